//! Routing table names, resolved as iproute2 resolves them.

use ferrotun_uapi::config::Table;

const TABLE_FILES: [&str; 2] = ["/etc/iproute2", "/usr/share/iproute2"];

/// The table id of a `Table =` that names or numbers one (`None` for auto/off).
pub fn table_id(table: &Table) -> Result<Option<u32>, String> {
    match table {
        Table::Auto | Table::Off => Ok(None),
        Table::Id(id) => Ok(Some(*id)),
        Table::Name(name) => lookup(name).map(Some).ok_or_else(|| {
            format!("routing table `{name}' is not defined in /etc/iproute2/rt_tables")
        }),
    }
}

fn lookup(name: &str) -> Option<u32> {
    match name {
        "unspec" => return Some(0),
        "default" => return Some(253),
        "main" => return Some(254),
        "local" => return Some(255),
        _ => {}
    }
    for dir in TABLE_FILES {
        let mut files = vec![format!("{dir}/rt_tables")];
        if let Ok(entries) = std::fs::read_dir(format!("{dir}/rt_tables.d")) {
            let mut extra: Vec<String> = entries
                .filter_map(Result::ok)
                .map(|e| e.path().to_string_lossy().into_owned())
                .filter(|p| p.ends_with(".conf"))
                .collect();
            extra.sort();
            files.extend(extra);
        }
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            if let Some(id) = find_in(&text, name) {
                return Some(id);
            }
        }
    }
    None
}

/// `ID NAME` lines; `#` starts a comment; ids may be decimal or 0x-hex.
fn find_in(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let code = line.split('#').next().unwrap_or("");
        let mut words = code.split_whitespace();
        let id = words.next()?;
        (words.next()? == name).then_some(())?;
        match id.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => id.parse().ok(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_from_rt_tables_text() {
        let text = "# comment\n255\tlocal\n254 main\n0x10 vpn # mine\n1000 big\n";
        assert_eq!(find_in(text, "vpn"), Some(16));
        assert_eq!(find_in(text, "big"), Some(1000));
        assert_eq!(find_in(text, "mine"), None);
        assert_eq!(table_id(&Table::Name("main".into())), Ok(Some(254)));
        assert_eq!(table_id(&Table::Id(7)), Ok(Some(7)));
        assert_eq!(table_id(&Table::Off), Ok(None));
    }
}
