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
    if shell == Shell::Fish {
        cmd.build();
        let mut lines = String::new();
        fish_positional_values(&cmd, &[], &mut lines);
        out.write_all(lines.as_bytes())
            .map_err(|e| format!("cannot write the completions: {e}"))?;
    }
    Ok(())
}

/// clap_complete's fish script completes options only, so fish offers files for every
/// positional (`ferrotun completions <TAB>` listed the directory). One line per positional
/// with a fixed set of values (`completions SHELL`) offers those values and no files, under
/// the same conditions the generated lines use for the subcommand.
fn fish_positional_values(cmd: &clap::Command, path: &[&str], lines: &mut String) {
    if let [first, rest @ ..] = path {
        let mut condition = format!("__fish_{NAME}_using_subcommand {first}");
        for name in rest {
            condition.push_str(&format!("; and __fish_seen_subcommand_from {name}"));
        }
        for arg in cmd.get_positionals() {
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_string())
                .collect();
            if !values.is_empty() {
                lines.push_str(&format!(
                    "complete -c {NAME} -n \"{condition}\" -f -a \"{}\"\n",
                    values.join(" ")
                ));
            }
        }
    }
    for sub in cmd.get_subcommands() {
        let mut deeper = path.to_vec();
        deeper.push(sub.get_name());
        fish_positional_values(sub, &deeper, lines);
    }
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
