//! The Slint UI adapters: the only place that imports `slint`.

slint::include_modules!();

pub fn run(_config: &crate::config::Config) -> anyhow::Result<()> {
    let window = AppWindow::new()?;
    window.run()?;
    Ok(())
}
