//! The rooms of src/ and their doors, held to docs/architecture.md: every `crate::` path in each
//! room must go through a door the doc's "Rooms and doors" table opens, the table must have no
//! cycle, only tui/ may use crossterm, only store/ (and the documented MLflow reader) may hold
//! SQL, and update() and render() do no I/O. A failure names the file, the line and the door.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const DOC: &str = include_str!("../docs/architecture.md");

/// room (a folder, or a file given more precisely) -> the rooms it may use.
fn doors() -> BTreeMap<String, BTreeSet<String>> {
    let start = DOC
        .find("## Rooms and doors")
        .expect("docs/architecture.md has a `## Rooms and doors` section");
    let mut table = BTreeMap::new();
    for line in DOC[start..].lines().skip(1) {
        if line.starts_with("## ") {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `room` | owns | may use |
        if cells.len() < 5 || !cells[1].starts_with('`') {
            continue;
        }
        let room = cells[1]
            .trim_matches('`')
            .trim_end_matches('/')
            .trim_end_matches(".rs")
            .to_string();
        let may: BTreeSet<String> = if cells[3] == "everything" {
            ["*".to_string()].into()
        } else {
            cells[3]
                .split(',')
                .map(|s| {
                    s.trim()
                        .trim_matches('`')
                        .trim_end_matches('/')
                        .trim_end_matches(".rs")
                        .to_string()
                })
                .filter(|s| !s.is_empty() && s != "—")
                .collect()
        };
        table.insert(room, may);
    }
    assert!(table.len() > 10, "the table was not found or is empty");
    table
}

/// The room of a file: the longest table entry that is the file or a folder above it.
fn room_of<'a>(rel: &str, table: &'a BTreeMap<String, BTreeSet<String>>) -> Option<&'a str> {
    let stem = rel.trim_end_matches(".rs");
    table
        .keys()
        .filter(|r| rel == r.as_str() || stem == r.as_str() || rel.starts_with(&format!("{r}/")))
        .max_by_key(|r| r.len())
        .map(String::as_str)
}

/// The top-level room a path names (`crate::store::Store` -> `store`).
fn top(room: &str) -> &str {
    room.split('/').next().unwrap_or(room)
}

/// Source without its test module (tests may reach anywhere).
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod ") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// (line, room named) for every `crate::ROOM` path, including inside `use crate::{a, b::c}`.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + 7..];
            if let Some(group) = after.strip_prefix('{') {
                for part in group.split([',', '}']) {
                    let name: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.push((n + 1, name));
                    }
                }
            } else {
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push((n + 1, name));
                }
            }
            rest = &after[after.len().min(1)..];
        }
    }
    out
}

fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The doors a file breaks: "src/FILE:LINE: ...".
fn violations(rel: &str, text: &str, table: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let Some(room) = room_of(rel, table) else {
        return vec![format!(
            "src/{rel}: belongs to no room of docs/architecture.md's table; add its room there"
        )];
    };
    let may = &table[room];
    if may.contains("*") {
        return Vec::new();
    }
    let own = top(room);
    let mut out = Vec::new();
    for (line, used) in crate_paths(without_tests(text)) {
        if used == own || may.contains(&used) || used == "self" || used == "super" {
            continue;
        }
        out.push(format!(
            "src/{rel}:{line}: room `{room}` uses `{used}` (crate::{used}), but docs/architecture.md opens it only to: {}",
            may.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    out
}

#[test]
fn every_crate_path_goes_through_a_door_the_doc_opens() {
    let table = doors();
    let mut bad = Vec::new();
    for (rel, text) in sources() {
        bad.extend(violations(&rel, &text, &table));
    }
    assert!(bad.is_empty(), "doors broken:\n{}", bad.join("\n"));
}

#[test]
fn the_room_table_has_no_cycle() {
    let table = doors();
    // Depth-first search over top-level rooms.
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (room, may) in &table {
        let e = graph.entry(top(room)).or_default();
        for m in may {
            if m != "*" && m != top(room) {
                e.insert(m.as_str());
            }
        }
    }
    fn visit<'a>(
        n: &'a str,
        g: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if let Some(i) = path.iter().position(|p| *p == n) {
            panic!(
                "a cycle of doors: {}",
                [&path[i..], &[n]].concat().join(" -> ")
            );
        }
        if done.contains(n) {
            return;
        }
        path.push(n);
        for m in g.get(n).into_iter().flatten() {
            visit(m, g, path, done);
        }
        path.pop();
        done.insert(n);
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        visit(n, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_check_catches_a_forbidden_door() {
    let table = doors();
    let v = violations(
        "ui/tabs/runs/table.rs",
        "use crate::store::Store;\nuse crate::{domain::Run, capture::procs};\n",
        &table,
    );
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(
        v[0].starts_with("src/ui/tabs/runs/table.rs:1: room `ui` uses `store`"),
        "{}",
        v[0]
    );
    assert!(v[1].contains(":2: room `ui` uses `capture`"), "{}", v[1]);
    assert!(violations("nowhere/x.rs", "", &table)[0].contains("belongs to no room"));
    let test_only = "fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::store::Store;\n}\n";
    assert!(
        violations("ui/x.rs", test_only, &table).is_empty(),
        "tests may reach anywhere"
    );
}

#[test]
fn crossterm_sql_and_io_stay_in_their_rooms() {
    let mut bad = Vec::new();
    for (rel, text) in sources() {
        let code = without_tests(&text);
        for (n, line) in code.lines().enumerate() {
            let at = format!("src/{rel}:{}", n + 1);
            if line.trim_start().starts_with("//") {
                continue;
            }
            if line.contains("crossterm") && !rel.starts_with("tui/") {
                bad.push(format!("{at}: crossterm outside tui/"));
            }
            let sql = line.contains("sqlx::") || line.contains("rusqlite::");
            if sql && !rel.starts_with("store/") && rel != "interop/mlflow.rs" {
                bad.push(format!("{at}: SQL outside store/ (and interop/mlflow.rs)"));
            }
            let pure = rel.starts_with("ui/")
                || (rel.starts_with("app/") && rel != "app/effects.rs" && rel != "app/run_loop.rs");
            let io = [
                "std::fs",
                "std::net",
                "std::process::Command",
                "tokio::",
                "std::io::",
            ];
            if pure && io.iter().any(|t| line.contains(t)) {
                bad.push(format!("{at}: I/O in update or render: {}", line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
