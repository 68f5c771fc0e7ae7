//! `shmsg completions SHELL`: a completion script for bash, zsh or fish,
//! made from the command-line definition itself, so that it always offers
//! the commands and flags this build has.
//!
//! It completes command names and each command's flags; endpoints and
//! values are left to the shell's default (file names).

use clap::Command;

/// The shells a script can be written for.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Shell {
    /// Bash (`source <(shmsg completions bash)`).
    Bash,
    /// Zsh, through its bash completion layer.
    Zsh,
    /// Fish (`shmsg completions fish | source`).
    Fish,
}

/// A visible command: its name, its one-line description and its long
/// flags with theirs.
struct Item {
    name: String,
    about: String,
    flags: Vec<(String, String)>,
}

/// The visible commands of `cli`, `help` included.
fn items(cli: &Command) -> Vec<Item> {
    let mut items: Vec<Item> = cli
        .get_subcommands()
        .filter(|command| !command.is_hide_set())
        .map(|command| Item {
            name: command.get_name().to_owned(),
            about: first_line(command.get_about().map(|a| a.to_string())),
            flags: command
                .get_arguments()
                .filter(|arg| !arg.is_hide_set())
                .filter_map(|arg| {
                    let long = arg.get_long()?;
                    Some((
                        long.to_owned(),
                        first_line(arg.get_help().map(|h| h.to_string())),
                    ))
                })
                .chain([("help".to_owned(), "Print help".to_owned())])
                .collect(),
        })
        .collect();
    if !items.iter().any(|item| item.name == "help") {
        items.push(Item {
            name: "help".into(),
            about: "Print the help of a command".into(),
            flags: Vec::new(),
        });
    }
    items
}

fn first_line(text: Option<String>) -> String {
    text.unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_owned()
}

/// The completion script for `shell`.
pub fn script(cli: &Command, shell: Shell) -> String {
    let items = items(cli);
    match shell {
        Shell::Bash => bash(&items),
        Shell::Zsh => format!(
            "#compdef shmsg\nautoload -U +X bashcompinit && bashcompinit\n{}",
            bash(&items)
        ),
        Shell::Fish => fish(&items),
    }
}

fn bash(items: &[Item]) -> String {
    let names: Vec<&str> = items.iter().map(|item| item.name.as_str()).collect();
    let mut script = format!(
        "# shmsg completions for bash: source <(shmsg completions bash)\n\
         _shmsg() {{\n    \
             local cur=\"${{COMP_WORDS[COMP_CWORD]}}\" words\n    \
             if [ \"$COMP_CWORD\" -eq 1 ]; then\n        \
                 words=\"{} --help --version\"\n    \
             else\n        \
                 case \"${{COMP_WORDS[1]}}\" in\n",
        names.join(" ")
    );
    for item in items {
        let flags: Vec<String> = item.flags.iter().map(|(f, _)| format!("--{f}")).collect();
        script.push_str(&format!(
            "            {}) words=\"{}\" ;;\n",
            item.name,
            flags.join(" ")
        ));
    }
    script.push_str(
        "            *) words=\"\" ;;\n        \
         esac\n        \
         case \"$cur\" in\n            \
             -*) ;;\n            \
             *) COMPREPLY=(); return ;;\n        \
         esac\n    \
         fi\n    \
         COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n\
         }\n\
         complete -o default -F _shmsg shmsg\n",
    );
    script
}

fn fish(items: &[Item]) -> String {
    let quote = |text: &str| text.replace('\\', "\\\\").replace('\'', "\\'");
    let mut script = String::from(
        "# shmsg completions for fish: shmsg completions fish | source\n\
         complete -c shmsg -n '__fish_use_subcommand' -l help -d 'Print help'\n\
         complete -c shmsg -n '__fish_use_subcommand' -l version -d 'Print version'\n",
    );
    for item in items {
        script.push_str(&format!(
            "complete -c shmsg -f -n '__fish_use_subcommand' -a {} -d '{}'\n",
            item.name,
            quote(&item.about)
        ));
        for (flag, help) in &item.flags {
            script.push_str(&format!(
                "complete -c shmsg -n '__fish_seen_subcommand_from {}' -l {flag} -d '{}'\n",
                item.name,
                quote(help)
            ));
        }
    }
    script
}
