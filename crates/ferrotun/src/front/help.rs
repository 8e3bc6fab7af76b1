//! The top-level help: every command, grouped, one line each (as `wg --help` lists its
//! subcommands), and one command's help.

use clap::Command;

use super::definition::{command, groups, NAME};

/// The list `ferrotun`, `ferrotun help` and `ferrotun --help` print.
pub fn overview() -> String {
    let root = command();
    let groups = groups();
    let width = groups
        .iter()
        .flat_map(|g| &g.commands)
        .map(|(_, c)| c.get_name().len())
        .max()
        .unwrap_or(0);
    let mut text = format!(
        "Usage: {NAME} <COMMAND> [ARGS]...\n       {NAME} [-f|--foreground] INTERFACE-NAME\n\n"
    );
    if let Some(about) = root.get_about() {
        text.push_str(&format!("{about}.\n"));
    }
    for group in &groups {
        text.push_str(&format!("\n{}:\n", group.heading));
        for (_, cmd) in &group.commands {
            let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
            text.push_str(&format!("  {:<width$}  {about}\n", cmd.get_name()));
        }
    }
    text.push_str(&format!(
        "\nOptions:\n  -f, --foreground  Stay in the foreground (the daemon)\n  \
         -h, --help        Print this list\n  \
         -v, --version     Print the version\n\n\
         `{NAME} help COMMAND' or `{NAME} COMMAND --help' shows a command's usage and options.\n\
         Called as `wg' or `wg-quick' (a link to this binary), it is that tool.\n"
    ));
    text
}

/// `help CMD` / `CMD --help`: the command's usage, description and options, or `None` for a
/// word that is no command.
pub fn of_command(name: &str) -> Option<String> {
    answer(name).map(|e| e.render().to_string())
}

/// Prints what [`of_command`] returns as clap prints any help (styled on a terminal, as
/// `CMD --help` is); false for a word that is no command.
pub fn print(name: &str) -> bool {
    match answer(name) {
        Some(help) => {
            // A reader that stopped early (`| head`) is no error.
            let _ = help.print();
            true
        }
        None => false,
    }
}

/// clap's answer to `CMD --help`. Asked for rather than rendered with a render method:
/// clap picks the long or the short layout by whether any text has a long form, and the
/// mesh (which parses its own words) answers `mesh --help` this way too, so `help CMD` can
/// only match them by taking the same path.
fn answer(name: &str) -> Option<clap::Error> {
    subcommand(name)?
        .try_get_matches_from([name, "--help"])
        .err()
        .filter(|e| e.kind() == clap::error::ErrorKind::DisplayHelp)
}

/// The command `name` as its own parser: usage lines name the binary as `ferrotun CMD`.
pub fn subcommand(name: &str) -> Option<Command> {
    let mut root = command();
    root.build();
    let sub = root.find_subcommand(name)?;
    Some(sub.clone().bin_name(format!("{NAME} {name}")))
}
