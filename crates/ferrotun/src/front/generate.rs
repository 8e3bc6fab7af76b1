//! Shell completions and man pages, generated from [`super::definition::command`].

use std::io::Write;
use std::path::Path;

use clap_complete::Shell;

use super::definition::{command, NAME};

/// Writes the completion script for `shell` (bash, zsh or fish).
pub fn completions(shell: &str, out: &mut dyn Write) -> Result<(), String> {
    let shell: Shell = shell
        .parse()
        .map_err(|_| format!("no completions for shell `{shell}'"))?;
    let mut cmd = command();
    clap_complete::generate(shell, &mut cmd, NAME, out);
    Ok(())
}

/// ferrotun(1): the synopsis, every command with its one-line description, the options.
pub fn man_page(out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(command()).render(out)
}

/// ferrotun(1) and one ferrotun-COMMAND(1) per command, written into `dir`; returns the
/// files written.
pub fn man_pages(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut root = command();
    root.build();
    let main = dir.join(format!("{NAME}.1"));
    let mut file = std::fs::File::create(&main)?;
    clap_mangen::Man::new(root.clone()).render(&mut file)?;
    written.push(main);
    for sub in root.get_subcommands() {
        let name = format!("{NAME}-{}", sub.get_name());
        let path = dir.join(format!("{name}.1"));
        let mut file = std::fs::File::create(&path)?;
        let page = sub.clone().name(name);
        clap_mangen::Man::new(page).render(&mut file)?;
        written.push(path);
    }
    Ok(written)
}
