//! Authoring: source folder → signed bundle; keygen, sign, verify, inspect, diff.

macro_rules! todo_args {
    ($($name:ident => $f:ident),*) => {$(
        #[derive(clap::Args, Debug)]
        pub struct $name {}
        pub fn $f(_: $name) -> anyhow::Result<()> { anyhow::bail!("not implemented yet") }
    )*};
}
todo_args!(BuildArgs => build, KeygenArgs => keygen, SignArgs => sign, VerifyArgs => verify, InspectArgs => inspect, DiffArgs => diff);
