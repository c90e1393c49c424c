//! The Python originals that zoo's models mirror (`peers/python/`), run by compare like models.
//!
//! Everything about them comes from `peers/python/twins.json`: their names, the command that
//! starts each (run from that folder with the virtualenv's python), the options they take and
//! the models that mirror them. A twin is named in `--models` like a model (`py-gevent`,
//! `py-gunicorn-sync:workers=2`), or added by `--twins` for every selected model it mirrors;
//! zoo's `--workers` and `--threads` pass to the twins whose command takes them.

use crate::compare::launch::ModelSpec;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The folder of the originals, from the root of the workspace.
const PEERS: &str = "peers/python";
/// How an original's name starts, in `--models` and in the report's families.
pub const PREFIX: &str = "py-";
/// The environment variable naming another virtualenv (as `--twins-venv` does).
pub const VENV_ENV: &str = "ZOO_TWINS_VENV";
/// The settings of a model that may pass to a twin, as its command's placeholders name them.
const SETTINGS: [&str; 2] = ["workers", "threads"];

/// One original, as twins.json describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Twin {
    /// Its name, `py-...`.
    pub name: String,
    /// The model specs that mirror it.
    pub mirrors: Vec<String>,
    /// The command after the python, with `{listen}`, `{workers}`, `{threads}` to fill in.
    pub command: Vec<String>,
}

#[derive(Deserialize)]
struct File {
    python: String,
    twins: Vec<Twin>,
}

/// twins.json, with the folder it was read from and the python that runs the twins.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// The folder holding twins.json and run.py: the twins' working directory.
    pub dir: PathBuf,
    /// The virtualenv's python.
    pub python: PathBuf,
    /// The twins, in the file's order.
    pub twins: Vec<Twin>,
}

/// A twin to start, as `--models` or `--twins` chose it.
#[derive(Debug, Clone)]
pub struct TwinSpec {
    /// The name in the report: `py-gunicorn-sync` or `py-gunicorn-sync:workers=2`.
    pub name: String,
    /// The twin.
    pub twin: Twin,
    /// The settings given, e.g. `("workers", "2")`.
    pub settings: Vec<(String, String)>,
    /// The python that runs it and the folder it runs in.
    pub python: PathBuf,
    /// The working directory (peers/python).
    pub dir: PathBuf,
}

impl Catalogue {
    /// Finds peers/python above the zoo binary or the current directory, reads twins.json, and
    /// checks that the virtualenv's python is there (`venv` overrides the file's `python`).
    pub fn load(zoo: &Path, venv: Option<&Path>) -> Result<Catalogue, String> {
        let mut starts: Vec<PathBuf> = zoo.parent().map(Path::to_path_buf).into_iter().collect();
        if let Ok(cwd) = std::env::current_dir() {
            starts.push(cwd);
        }
        let dir = starts
            .iter()
            .flat_map(|s| s.ancestors())
            .map(|a| a.join(PEERS))
            .find(|d| d.join("twins.json").is_file())
            .ok_or_else(|| {
                format!(
                    "the Python originals: no {PEERS}/twins.json above {} or the current \
                     directory (run compare from the zoo workspace)",
                    zoo.display()
                )
            })?;
        let path = dir.join("twins.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: File =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let python = match venv {
            Some(v) => v.join("bin").join("python"),
            None => dir.join(&file.python),
        };
        if !python.is_file() {
            let which = match venv {
                Some(v) => format!(
                    "the virtualenv {} (--twins-venv or {VENV_ENV})",
                    v.display()
                ),
                None => format!(
                    "the virtualenv {}",
                    python
                        .parent()
                        .and_then(Path::parent)
                        .unwrap_or(&dir)
                        .display()
                ),
            };
            return Err(format!(
                "the Python originals need {which}, and it has no bin/python: run `make twins` \
                 first (or name another virtualenv with --twins-venv DIR or {VENV_ENV})"
            ));
        }
        Ok(Catalogue {
            dir,
            python,
            twins: file.twins,
        })
    }

    /// The twin `spec` names (`py-gunicorn-sync:workers=2`), its settings checked against its
    /// command.
    pub fn spec(&self, spec: &ModelSpec) -> Result<TwinSpec, String> {
        let Some(twin) = self.twins.iter().find(|t| t.name == spec.model) else {
            let known: Vec<&str> = self.twins.iter().map(|t| t.name.as_str()).collect();
            return Err(format!(
                "--models: no original '{}'; twins.json has {}",
                spec.model,
                known.join(", ")
            ));
        };
        let mut settings = Vec::new();
        let mut args = spec.args.iter();
        while let Some(flag) = args.next() {
            let key = flag.trim_start_matches("--");
            let takes = takes(twin);
            if !takes.contains(&key) {
                return Err(format!(
                    "--models: '{}': {} takes {}",
                    spec.name,
                    twin.name,
                    if takes.is_empty() {
                        "no settings".to_string()
                    } else {
                        takes.join(", ")
                    }
                ));
            }
            let Some(value) = args.next().filter(|v| !v.starts_with("--")) else {
                return Err(format!("--models: '{}': {key} needs a value", spec.name));
            };
            settings.push((key.to_string(), value.clone()));
        }
        Ok(TwinSpec {
            name: spec.name.clone(),
            twin: twin.clone(),
            settings,
            python: self.python.clone(),
            dir: self.dir.clone(),
        })
    }

    /// The originals of `models` (`--twins`): every twin one of them mirrors, once, in the
    /// file's order, with the model's `--workers`/`--threads` where the twin takes them.
    pub fn originals_of(&self, models: &[ModelSpec]) -> Vec<TwinSpec> {
        let mut out: Vec<TwinSpec> = Vec::new();
        for twin in &self.twins {
            for model in models.iter().filter(|m| mirrors(twin, m)) {
                let settings: Vec<(String, String)> = pairs(&model.args)
                    .into_iter()
                    .filter(|(k, _)| takes(twin).contains(&k.as_str()))
                    .collect();
                let mut name = twin.name.clone();
                for (k, v) in &settings {
                    name.push_str(&format!(":{k}={v}"));
                }
                if out.iter().all(|t| t.name != name) {
                    out.push(TwinSpec {
                        name,
                        twin: twin.clone(),
                        settings,
                        python: self.python.clone(),
                        dir: self.dir.clone(),
                    });
                }
            }
        }
        out
    }
}

/// The settings a twin's command takes (its placeholders other than `{listen}`).
fn takes(twin: &Twin) -> Vec<&'static str> {
    SETTINGS
        .into_iter()
        .filter(|s| twin.command.iter().any(|a| *a == format!("{{{s}}}")))
        .collect()
}

/// `--key value` pairs of a model spec's arguments (a bare flag has an empty value).
fn pairs(args: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut it = args.iter().peekable();
    while let Some(flag) = it.next() {
        let key = flag.trim_start_matches("--").to_string();
        let value = match it.peek() {
            Some(v) if !v.starts_with("--") => it.next().cloned().unwrap_or_default(),
            _ => String::new(),
        };
        out.push((key, value));
    }
    out
}

/// Whether `model` is one of the twin's mirrors: the same model, with every setting the mirror
/// names (`tokio:threads=1` is mirrored by `tokio:threads=1`, not by `tokio`).
pub fn mirrors(twin: &Twin, model: &ModelSpec) -> bool {
    mirrored_by(&twin.mirrors, model)
}

/// Whether `model` is among `mirrors` (model specs as twins.json writes them).
pub fn mirrored_by(mirrors: &[String], model: &ModelSpec) -> bool {
    mirrors.iter().any(|m| {
        ModelSpec::parse(m).is_ok_and(|mirror| {
            let have = pairs(&model.args);
            mirror.model == model.model && pairs(&mirror.args).iter().all(|p| have.contains(p))
        })
    })
}

impl TwinSpec {
    /// The command line after the python: `{listen}` is `127.0.0.1:0`, a setting given fills its
    /// placeholder, and one not given is left out with its flag (the twin's default applies).
    /// Of a scenario's server arguments only `--workers` and `--threads` apply to a twin.
    pub fn args(&self, scenario_args: &[String]) -> Vec<String> {
        let mut given = self.settings.clone();
        for (k, v) in pairs(scenario_args) {
            if takes(&self.twin).contains(&k.as_str()) && given.iter().all(|(g, _)| *g != k) {
                given.push((k, v));
            }
        }
        let mut out: Vec<String> = Vec::new();
        for arg in &self.twin.command {
            if arg == "{listen}" {
                out.push("127.0.0.1:0".to_string());
                continue;
            }
            let placeholder = SETTINGS.into_iter().find(|s| *arg == format!("{{{s}}}"));
            match placeholder {
                Some(key) => match given.iter().find(|(k, _)| k == key) {
                    Some((_, v)) => out.push(v.clone()),
                    // The flag before the placeholder goes too.
                    None => {
                        out.pop();
                    }
                },
                None => out.push(arg.clone()),
            }
        }
        out
    }
}

/// The address in a twin's ready line, `NAME listening on http://ADDR (pid N)`.
pub fn ready_addr(line: &str, name: &str) -> Option<SocketAddr> {
    let rest = line.trim_end().strip_prefix(name)?;
    let rest = rest.strip_prefix(" listening on http://")?;
    let (addr, rest) = rest.split_once(" (pid ")?;
    rest.strip_suffix(')')?.parse::<u32>().ok()?;
    addr.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        let text = include_str!("../../../peers/python/twins.json");
        let file: File = serde_json::from_str(text).expect("twins.json parses");
        Catalogue {
            dir: PathBuf::from("peers/python"),
            python: PathBuf::from("python"),
            twins: file.twins,
        }
    }

    fn spec(s: &str) -> ModelSpec {
        ModelSpec::parse(s).expect("valid spec")
    }

    #[test]
    fn originals_follow_the_mirrors_of_twins_json() {
        let c = catalogue();
        let names = |models: &[&str]| -> Vec<String> {
            let specs: Vec<ModelSpec> = models.iter().map(|m| spec(m)).collect();
            c.originals_of(&specs).into_iter().map(|t| t.name).collect()
        };
        assert_eq!(
            names(&["coroutine", "tokio:threads=1", "epoll"]),
            ["py-gevent", "py-tornado", "py-aiohttp", "py-uvicorn"]
        );
        // A multi-threaded tokio mirrors no single-loop original.
        assert!(names(&["tokio"]).is_empty());
        assert_eq!(
            names(&["prefork:workers=3", "pool:threads=8"]),
            [
                "py-gunicorn-sync:workers=3",
                "py-gunicorn-gthread:threads=8"
            ]
        );
    }

    #[test]
    fn settings_fill_the_command_or_leave_the_default() {
        let c = catalogue();
        let sync = c
            .spec(&spec("py-gunicorn-sync:workers=2"))
            .expect("takes workers");
        assert_eq!(
            sync.args(&[]),
            [
                "run.py",
                "py-gunicorn-sync",
                "--listen",
                "127.0.0.1:0",
                "--workers",
                "2"
            ]
        );
        let sync = c.spec(&spec("py-gunicorn-sync")).expect("valid");
        let zoo_only =
            ["--max-connections", "20000", "--keep-alive-timeout", "120"].map(String::from);
        assert_eq!(
            sync.args(&zoo_only),
            ["run.py", "py-gunicorn-sync", "--listen", "127.0.0.1:0"]
        );
        let err = c
            .spec(&spec("py-tornado:workers=2"))
            .expect_err("no workers");
        assert!(err.contains("py-tornado takes no settings"), "{err}");
        let err = c.spec(&spec("py-nope")).expect_err("unknown");
        assert!(err.contains("py-gevent"), "{err}");
    }

    #[test]
    fn ready_lines_name_the_twin() {
        let line = "py-gevent listening on http://127.0.0.1:4242 (pid 17)\n";
        assert_eq!(
            ready_addr(line, "py-gevent"),
            Some(SocketAddr::from(([127, 0, 0, 1], 4242)))
        );
        assert_eq!(ready_addr(line, "py-tornado"), None);
        assert_eq!(
            ready_addr("py-gevent listening on http://x (pid 1)", "py-gevent"),
            None
        );
    }
}
