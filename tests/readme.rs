//! The README is how a user meets squeezebox: its first two commands are
//! the demo script (the main job) and the one CI runs (every test), it fits
//! in 250 lines, and every file it or docs/ links to exists.

use std::path::Path;

use squeezebox::repo_root;

const MAX_README_LINES: usize = 250;

fn read(path: &Path) -> String {
    std::fs::read_to_string(repo_root().join(path))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The commands of the first `sh` block, without their comments.
fn first_commands(markdown: &str) -> Vec<&str> {
    let block = markdown
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a ```sh block");
    block
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|command| !command.is_empty())
        .collect()
}

/// The one command a script hands over to with `exec`.
fn exec_of(script: &str) -> &str {
    let mut execs = script
        .lines()
        .filter_map(|line| line.trim().strip_prefix("exec "));
    let command = execs.next().expect("the script execs a command");
    assert!(execs.next().is_none(), "the script execs more than once");
    command.trim()
}

#[test]
fn the_readme_opens_with_the_demo_and_the_command_ci_runs() {
    let readme = read(Path::new("README.md"));
    let commands = first_commands(&readme);
    assert_eq!(commands.len(), 2, "the two commands: {commands:?}");
    let ci = exec_of(&read(Path::new(".ci/run"))).to_owned();
    assert_eq!(
        commands[1], ci,
        "the README's test command is what .ci/run runs"
    );

    let demo = commands[0]
        .strip_prefix("bash ")
        .expect("the demo command runs a script with bash");
    assert_eq!(demo, "scripts/demo.sh");
    let demo = read(Path::new(demo));
    let last = demo.lines().map(str::trim).rfind(|line| !line.is_empty());
    assert!(
        last.is_some_and(|line| line.starts_with("target/release/label-image")),
        "the demo ends by labelling a picture: {last:?}"
    );
}

#[test]
fn the_readme_fits_in_250_lines() {
    let lines = read(Path::new("README.md")).lines().count();
    assert!(
        lines <= MAX_README_LINES,
        "README.md has {lines} lines, more than {MAX_README_LINES}: move the rest to docs/"
    );
}

/// Relative link targets in a markdown page: `](target)`, without anchors.
fn relative_links(markdown: &str) -> Vec<&str> {
    markdown
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|target| target.split('#').next().unwrap_or_default())
        .filter(|target| !target.is_empty() && !target.contains("://"))
        .collect()
}

#[test]
fn every_file_the_readme_and_docs_link_to_exists() {
    let mut pages = vec![repo_root().join("README.md")];
    for entry in std::fs::read_dir(repo_root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    let mut missing = Vec::new();
    for page in &pages {
        let dir = page.parent().unwrap();
        for target in relative_links(&read(page)) {
            if !dir.join(target).exists() {
                missing.push(format!("{}: {target}", page.display()));
            }
        }
    }
    assert!(missing.is_empty(), "links to nothing: {missing:#?}");
}
