//! MQTT on the city side: publish manifests, serve blobs, send signed commands.

macro_rules! todo_args {
    ($($name:ident => $f:ident),*) => {$(
        #[derive(clap::Args, Debug)]
        pub struct $name {}
        pub fn $f(_: $name) -> anyhow::Result<()> { anyhow::bail!("not implemented yet") }
    )*};
}
todo_args!(PublishArgs => publish, ServeArgs => serve, CommandArgs => command);
