//! The top-level help: every command, grouped, one line each (as `wg --help` lists its
//! subcommands), and one command's help.

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
    let mut root = command();
    // Usage lines name the binary as `ferrotun CMD`, not just `CMD`.
    root.build();
    let cmd = root.find_subcommand_mut(name)?;
    Some(cmd.render_long_help().to_string())
}
