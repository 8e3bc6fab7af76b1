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
///
/// Rendered by asking clap for `CMD --help` rather than by calling a render method: clap
/// picks the long or the short layout by whether any text has a long form, and the mesh
/// (which parses its own words) answers `mesh --help` that way too, so `help CMD` can only
/// match them by taking the same path.
pub fn of_command(name: &str) -> Option<String> {
    let mut cmd = subcommand(name)?;
    let rendered = match cmd.clone().try_get_matches_from([name, "--help"]) {
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => e.render().to_string(),
        // Every command has --help; should one lose it, its long help is still its help.
        _ => cmd.render_long_help().to_string(),
    };
    Some(rendered)
}

/// The command `name` as its own parser: usage lines name the binary as `ferrotun CMD`.
pub fn subcommand(name: &str) -> Option<Command> {
    let mut root = command();
    root.build();
    let sub = root.find_subcommand(name)?;
    Some(sub.clone().bin_name(format!("{NAME} {name}")))
}
