//! `trawl crawl --config FILE`: crawl options from a TOML file.
//!
//! In: the process arguments. Out: the same arguments with the file's
//! settings inserted as options right after `crawl`, except those the
//! command line gives itself, so flags override the file. Keys are the
//! long option names (`max-pages = 100`, `allow-host = ["a.example"]`,
//! `ignore-robots = true`; `_` works for `-`), optionally grouped in tables
//! (`[politeness]`) whose names are ignored; `seeds = [...]` adds seed URLs.
//! Secrets are refused: they come only from the environment.

use std::collections::HashSet;
use std::ffi::OsString;

use clap::CommandFactory;

use crate::cli::Cli;

/// Returns the arguments with the config file's settings in place, or a
/// message for the user.
pub fn expand(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let text: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // The subcommand: the first argument that is not a global flag.
    let Some(sub) = text
        .iter()
        .skip(1)
        .position(|a| !a.starts_with('-'))
        .map(|i| i + 1)
    else {
        return Ok(args);
    };
    if text[sub] != "crawl" {
        return Ok(args);
    }
    let rest = &text[sub + 1..];
    let end = rest.iter().position(|a| a == "--").unwrap_or(rest.len());
    let mut path = None;
    let mut given = HashSet::new();
    for (i, a) in rest[..end].iter().enumerate() {
        let Some(flag) = a.strip_prefix("--") else {
            continue;
        };
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        if name == "config" {
            path = value.or_else(|| rest.get(i + 1).cloned());
        }
        given.insert(name.to_string());
    }
    let Some(path) = path else {
        return Ok(args);
    };
    let body =
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read --config {path}: {e}"))?;
    let table: toml::Table = body
        .parse()
        .map_err(|e| format!("--config {path} is not valid TOML: {e}"))?;

    let known: HashSet<String> = Cli::command()
        .find_subcommand("crawl")
        .map(|c| {
            c.get_arguments()
                .filter_map(|a| a.get_long().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut entries = Vec::new();
    for (key, value) in table {
        match value {
            toml::Value::Table(group) => entries.extend(group),
            v => entries.push((key, v)),
        }
    }
    let mut injected: Vec<String> = Vec::new();
    for (key, value) in entries {
        let key = key.replace('_', "-");
        let lower = key.to_ascii_lowercase();
        let last = lower.rsplit('-').next().unwrap_or("");
        if ["key", "token", "secret", "password", "credentials"].contains(&last) {
            return Err(format!(
                "--config {path}: `{key}` looks like a secret; secrets are read only from the environment \
                 (the LLM API key from TRAWL_LLM_API_KEY or OPENAI_API_KEY)"
            ));
        }
        if key == "seeds" {
            for v in values(&path, &key, value)? {
                injected.push(v);
            }
            continue;
        }
        if key == "config" || !known.contains(&key) {
            return Err(format!(
                "--config {path}: unknown setting `{key}` (settings are `trawl crawl` option names, like max-pages)"
            ));
        }
        if given.contains(&key) {
            continue; // the command line wins
        }
        match value {
            toml::Value::Boolean(true) => injected.push(format!("--{key}")),
            toml::Value::Boolean(false) => {}
            other => {
                // `--key=value`: a value starting with `-` stays a value.
                for v in values(&path, &key, other)? {
                    injected.push(format!("--{key}={v}"));
                }
            }
        }
    }
    let mut out: Vec<OsString> = args[..=sub].to_vec();
    out.extend(injected.into_iter().map(OsString::from));
    out.extend(args[sub + 1..].iter().cloned());
    Ok(out)
}

/// A setting's value(s) as command-line text.
fn values(path: &str, key: &str, value: toml::Value) -> Result<Vec<String>, String> {
    Ok(match value {
        toml::Value::String(s) => vec![s],
        toml::Value::Integer(n) => vec![n.to_string()],
        toml::Value::Float(f) => vec![f.to_string()],
        toml::Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(values(path, key, item)?);
            }
            out
        }
        other => {
            return Err(format!(
                "--config {path}: `{key}` has a {} value; use a string, number, boolean or list",
                other.type_str()
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(file: &str, args: &[&str]) -> Result<Vec<String>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, file).unwrap();
        let mut argv = vec!["trawl".to_string()];
        for a in args {
            argv.push(a.replace("FILE", &path.display().to_string()));
        }
        expand(argv.into_iter().map(OsString::from).collect()).map(|v| {
            v.into_iter()
                .map(|a| a.to_string_lossy().into_owned())
                .filter(|a| !a.ends_with("t.toml"))
                .collect()
        })
    }

    #[test]
    fn settings_become_options_and_flags_win() {
        let file = "seeds = [\"https://a.example/\"]\nmax-pages = 10\n\n[politeness]\nper_host_rate = 0.5\nignore-robots = true\nno-sitemaps = false\nallow-host = [\"x.example\", \"y.example\"]\n";
        let got = run(
            file,
            &["-q", "crawl", "--config", "FILE", "--max-pages", "20"],
        )
        .unwrap();
        assert_eq!(got[..2], ["trawl", "-q"]);
        assert_eq!(got[2], "crawl");
        let rest = got[3..].join(" ");
        assert!(rest.contains("https://a.example/"), "{rest}");
        assert!(rest.contains("--per-host-rate=0.5"), "{rest}");
        assert!(rest.contains("--ignore-robots"), "{rest}");
        assert!(!rest.contains("no-sitemaps"), "{rest}");
        assert!(
            rest.contains("--allow-host=x.example --allow-host=y.example"),
            "{rest}"
        );
        // The command line's --max-pages, not the file's.
        assert!(!rest.contains("--max-pages=10"), "{rest}");
        assert!(rest.ends_with("--config --max-pages 20"), "{rest}");
    }

    #[test]
    fn token_counts_are_not_secrets_and_values_may_start_with_a_dash() {
        let ok = run(
            "llm-max-total-tokens = 5000\nllm-prompt = \"- be brief\"\n",
            &["crawl", "--config", "FILE"],
        )
        .unwrap()
        .join(" ");
        assert!(ok.contains("--llm-max-total-tokens=5000"), "{ok}");
        assert!(ok.contains("--llm-prompt=- be brief"), "{ok}");
        let err = run("api_token = \"t\"", &["crawl", "--config", "FILE"]).unwrap_err();
        assert!(
            err.contains("secrets are read only from the environment"),
            "{err}"
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let err = |f: &str| run(f, &["crawl", "--config=FILE"]).unwrap_err();
        assert!(err("max-pages = ").contains("not valid TOML"));
        assert!(err("max-pagez = 3").contains("unknown setting `max-pagez`"));
        assert!(
            err("llm-api-key = \"sk-1\"").contains("secrets are read only from the environment")
        );
        assert!(err("max-pages = 2026-01-01").contains("datetime"));
        let missing = expand(
            ["trawl", "crawl", "--config", "/no/such/file.toml"]
                .into_iter()
                .map(OsString::from)
                .collect(),
        )
        .unwrap_err();
        assert!(missing.contains("cannot read --config /no/such/file.toml"));
        // Other commands are left alone.
        let args: Vec<OsString> = ["trawl", "status", "--config", "x"]
            .into_iter()
            .map(OsString::from)
            .collect();
        assert_eq!(expand(args.clone()).unwrap(), args);
    }
}
