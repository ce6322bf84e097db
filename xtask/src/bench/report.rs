//! The summary table: rows in one shape for every suite (Rust, Python, Node), ratios against
//! the best peer of the same run, and the issue's targets.
//!
//! A suite file is `{"suite": S, "rows": [row, ...]}` where a row is
//! `{"scenario", "unit", "higher_is_better", "iris", "peers": {name: value},
//!   "floor": {name: value}?, "target": {"ratio"?, "against"?, "min"?, "max"?}?}`.
//! `target.ratio`: Iris must be at least that many times the named peer (`against`), or the
//! best peer; "times" means faster, so for lower-is-better units it is `peer / iris`.
//! `min`/`max` bound Iris's absolute value.

use std::path::Path;
use std::time::SystemTime;

use super::json::Json;

/// What one row must reach.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Target {
    pub(crate) ratio: Option<f64>,
    pub(crate) against: Option<String>,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
}

/// One scenario of one suite.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) suite: String,
    pub(crate) scenario: String,
    pub(crate) unit: String,
    pub(crate) higher_is_better: bool,
    pub(crate) iris: Option<f64>,
    /// The systems Iris is compared with.
    pub(crate) peers: Vec<(String, f64)>,
    /// Baselines shown beside the peers but not competed with (plain Tokio).
    pub(crate) floor: Vec<(String, f64)>,
    pub(crate) target: Option<Target>,
}

fn pairs(j: Option<&Json>) -> Vec<(String, f64)> {
    j.and_then(Json::entries)
        .unwrap_or_default()
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
        .collect()
}

impl Row {
    /// A row of a suite file; `None` when it lacks a scenario or a unit.
    pub(crate) fn from_json(suite: &str, j: &Json) -> Option<Row> {
        let target = j
            .get("target")
            .filter(|t| t.entries().is_some())
            .map(|t| Target {
                ratio: t.get("ratio").and_then(Json::as_f64),
                against: t.get("against").and_then(Json::as_str).map(str::to_owned),
                min: t.get("min").and_then(Json::as_f64),
                max: t.get("max").and_then(Json::as_f64),
            });
        Some(Row {
            suite: suite.to_owned(),
            scenario: j.get("scenario")?.as_str()?.to_owned(),
            unit: j.get("unit")?.as_str()?.to_owned(),
            higher_is_better: !matches!(j.get("higher_is_better"), Some(Json::Bool(false))),
            iris: j.get("iris").and_then(Json::as_f64),
            peers: pairs(j.get("peers")),
            floor: pairs(j.get("floor")),
            target,
        })
    }

    /// The best peer of the run.
    pub(crate) fn best_peer(&self) -> Option<(&str, f64)> {
        self.peers
            .iter()
            .filter(|(_, v)| v.is_finite() && *v > 0.0)
            .map(|(k, v)| (k.as_str(), *v))
            .reduce(|a, b| {
                let better = if self.higher_is_better {
                    b.1 > a.1
                } else {
                    b.1 < a.1
                };
                if better { b } else { a }
            })
    }

    /// How many times better Iris is than `other` (>1: Iris is faster or smaller).
    pub(crate) fn ratio_to(&self, other: f64) -> Option<f64> {
        let iris = self.iris.filter(|v| v.is_finite() && *v > 0.0)?;
        if !(other.is_finite() && other > 0.0) {
            return None;
        }
        Some(if self.higher_is_better {
            iris / other
        } else {
            other / iris
        })
    }

    /// Iris against the best peer.
    pub(crate) fn ratio(&self) -> Option<f64> {
        self.ratio_to(self.best_peer()?.1)
    }

    /// Whether every part of the target holds; `None` without a target or the figures to
    /// judge it.
    pub(crate) fn met(&self) -> Option<bool> {
        let t = self.target.as_ref()?;
        let iris = self.iris?;
        let mut ok = true;
        if let Some(r) = t.ratio {
            let against = match &t.against {
                Some(name) => self.peers.iter().find(|(k, _)| k == name).map(|(_, v)| *v),
                None => self.best_peer().map(|(_, v)| v),
            };
            ok &= self.ratio_to(against?)? >= r;
        }
        if let Some(min) = t.min {
            ok &= iris >= min;
        }
        if let Some(max) = t.max {
            ok &= iris <= max;
        }
        Some(ok)
    }

    /// The target in words.
    pub(crate) fn target_text(&self) -> String {
        let Some(t) = &self.target else {
            return "-".into();
        };
        let mut parts = Vec::new();
        if let Some(r) = t.ratio {
            let mut part = format!("≥{r}x {}", t.against.as_deref().unwrap_or("best"));
            // Against a named peer that is not the best one, say where Iris stands.
            let named = t.against.as_deref().and_then(|a| {
                let v = self.peers.iter().find(|(k, _)| k == a)?.1;
                (self.best_peer()?.0 != a).then(|| self.ratio_to(v))?
            });
            if let Some(x) = named {
                part.push_str(&format!(" (is {x:.2}x)"));
            }
            parts.push(part);
        }
        if let Some(min) = t.min {
            parts.push(format!("≥{}", human(min, &self.unit)));
        }
        if let Some(max) = t.max {
            parts.push(format!("≤{}", human(max, &self.unit)));
        }
        parts.join(", ")
    }

    /// The row with what the summary derived from it (best peer, ratio, target met).
    pub(crate) fn to_json(&self) -> Json {
        let map =
            |v: &[(String, f64)]| Json::obj(v.iter().map(|(k, v)| (k.clone(), Json::num(*v))));
        let opt = |v: Option<f64>| v.map_or(Json::Null, Json::num);
        let mut m = vec![
            ("suite", Json::Str(self.suite.clone())),
            ("scenario", Json::Str(self.scenario.clone())),
            ("unit", Json::Str(self.unit.clone())),
            ("higher_is_better", Json::Bool(self.higher_is_better)),
            ("iris", opt(self.iris)),
            ("peers", map(&self.peers)),
            ("floor", map(&self.floor)),
        ];
        if let Some(t) = &self.target {
            let mut tm = Vec::new();
            if let Some(r) = t.ratio {
                tm.push(("ratio", Json::num(r)));
            }
            if let Some(a) = &t.against {
                tm.push(("against", Json::Str(a.clone())));
            }
            if let Some(v) = t.min {
                tm.push(("min", Json::num(v)));
            }
            if let Some(v) = t.max {
                tm.push(("max", Json::num(v)));
            }
            m.push(("target", Json::obj(tm)));
        }
        m.push((
            "best_peer",
            self.best_peer()
                .map_or(Json::Null, |(k, _)| Json::Str(k.into())),
        ));
        m.push(("ratio", opt(self.ratio())));
        m.push(("met", self.met().map_or(Json::Null, Json::Bool)));
        Json::obj(m)
    }
}

/// The rows of one suite file; an empty list when it is not in the suite shape.
pub(crate) fn suite_rows(j: &Json) -> Vec<Row> {
    let suite = j.get("suite").and_then(Json::as_str).unwrap_or("?");
    j.get("rows")
        .and_then(Json::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(|r| Row::from_json(suite, r))
        .collect()
}

/// Puts the Rust rows first, in the issue's order (spawn, fanout, sink, pingpong, skynet,
/// mesh); other suites keep the order of their files.
pub(crate) fn order(rows: &mut [Row]) {
    const RUST: &[&str] = &[
        "spawn_idle 100k",
        "spawn_idle memory",
        "fanout",
        "sink",
        "pingpong",
        "skynet",
        "mesh sink",
        "mesh pingpong",
        "mesh round trip",
    ];
    rows.sort_by_key(|r| {
        if r.suite != "rust" {
            return RUST.len() + 1;
        }
        RUST.iter()
            .position(|p| r.scenario.starts_with(p))
            .unwrap_or(RUST.len())
    });
}

/// A value with an SI prefix for rates and plain digits for times and sizes.
pub(crate) fn human(v: f64, unit: &str) -> String {
    let per_second = unit.ends_with("/s");
    let (scaled, prefix) = if per_second && v >= 1e9 {
        (v / 1e9, "G ")
    } else if per_second && v >= 1e6 {
        (v / 1e6, "M ")
    } else if per_second && v >= 1e3 {
        (v / 1e3, "k ")
    } else {
        (v, "")
    };
    let digits = if scaled >= 100.0 {
        0
    } else if scaled >= 10.0 {
        1
    } else {
        2
    };
    format!("{scaled:.digits$} {prefix}{unit}")
}

/// The table, one line per row, after a line describing the machine.
pub(crate) fn render(rows: &[Row], machine: &str) -> String {
    let head = [
        "suite",
        "scenario",
        "iris",
        "best peer",
        "iris/best",
        "floor",
        "target",
        "met",
    ];
    let mut lines: Vec<[String; 8]> = vec![head.map(String::from)];
    for r in rows {
        let value = |v: f64| human(v, &r.unit);
        lines.push([
            r.suite.clone(),
            r.scenario.clone(),
            r.iris.map_or("-".into(), value),
            r.best_peer()
                .map_or("-".into(), |(k, v)| format!("{k} {}", value(v))),
            r.ratio().map_or("-".into(), |x| format!("{x:.2}x")),
            r.floor
                .iter()
                .map(|(k, v)| format!("{k} {}", value(*v)))
                .collect::<Vec<_>>()
                .join(", "),
            r.target_text(),
            match r.met() {
                Some(true) => "yes".into(),
                Some(false) => "NO".into(),
                None => "-".into(),
            },
        ]);
    }
    let mut widths = [0usize; 8];
    for l in &lines {
        for (w, c) in widths.iter_mut().zip(l) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = format!("machine: {machine}\n");
    for (i, l) in lines.iter().enumerate() {
        let cells: Vec<String> = l
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        out.push_str(cells.join(" | ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("-|-"));
            out.push('\n');
        }
    }
    out
}

/// How a criterion group becomes a row.
struct Spec {
    group: &'static str,
    scenario: &'static str,
    unit: &'static str,
    /// `Rate`: elements per second; `MicrosEach`: µs per element.
    measure: Measure,
    target: Target,
}

#[derive(Clone, Copy)]
enum Measure {
    Rate,
    MicrosEach,
}

fn specs() -> Vec<Spec> {
    let ratio = |r: f64| Target {
        ratio: Some(r),
        ..Target::default()
    };
    vec![
        Spec {
            group: "spawn_idle",
            scenario: "spawn_idle 100k",
            unit: "actors/s",
            measure: Measure::Rate,
            target: Target {
                min: Some(1e6),
                ..Target::default()
            },
        },
        Spec {
            group: "fanout",
            scenario: "fanout 100k",
            unit: "msg/s",
            measure: Measure::Rate,
            target: ratio(2.0),
        },
        Spec {
            group: "sink",
            scenario: "sink 1M",
            unit: "msg/s",
            measure: Measure::Rate,
            target: ratio(2.0),
        },
        Spec {
            group: "pingpong",
            scenario: "pingpong 200k",
            unit: "round trips/s",
            measure: Measure::Rate,
            target: ratio(1.5),
        },
        Spec {
            group: "mesh_sink",
            scenario: "mesh sink 1M (2 processes)",
            unit: "msg/s",
            measure: Measure::Rate,
            target: Target {
                min: Some(1e6),
                ..Target::default()
            },
        },
        Spec {
            group: "mesh_pingpong",
            scenario: "mesh pingpong 20k (2 processes)",
            unit: "round trips/s",
            measure: Measure::Rate,
            target: Target::default(),
        },
        Spec {
            group: "mesh_pingpong",
            scenario: "mesh round trip",
            unit: "µs",
            measure: Measure::MicrosEach,
            target: Target {
                max: Some(50.0),
                ..Target::default()
            },
        },
    ]
}

/// One criterion result: the median time of one iteration in ns, and its element count.
fn criterion_result(dir: &Path, since: Option<SystemTime>) -> Option<(f64, f64)> {
    let est = dir.join("new/estimates.json");
    if let Some(since) = since {
        let modified = std::fs::metadata(&est).and_then(|m| m.modified()).ok()?;
        if modified < since {
            return None; // left over from an earlier run
        }
    }
    let e = Json::parse(&std::fs::read_to_string(&est).ok()?).ok()?;
    let ns = e.get("median")?.get("point_estimate")?.as_f64()?;
    let b = Json::parse(&std::fs::read_to_string(dir.join("new/benchmark.json")).ok()?).ok()?;
    let n = b.get("throughput")?.get("Elements")?.as_f64()?;
    Some((ns, n))
}

/// The Rust rows from criterion's output under `criterion_dir` (`<group>/<system>/new/`),
/// counting only results written after `since`. Iris is the `iris` function, `tokio` the
/// floor, every other function a peer.
pub(crate) fn criterion_rows(criterion_dir: &Path, since: Option<SystemTime>) -> Vec<Row> {
    let mut rows = Vec::new();
    for spec in specs() {
        let mut systems: Vec<(String, f64)> = Vec::new();
        let group = criterion_dir.join(spec.group);
        let mut entries: Vec<_> = std::fs::read_dir(&group)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("new").is_dir())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Some((ns, n)) = criterion_result(&e.path(), since) else {
                continue;
            };
            let v = match spec.measure {
                Measure::Rate => n / (ns * 1e-9),
                Measure::MicrosEach => ns / 1e3 / n,
            };
            systems.push((e.file_name().to_string_lossy().into_owned(), v));
        }
        if systems.is_empty() {
            continue;
        }
        let take = |name: &str| systems.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
        rows.push(Row {
            suite: "rust".into(),
            scenario: spec.scenario.into(),
            unit: spec.unit.into(),
            higher_is_better: matches!(spec.measure, Measure::Rate),
            iris: take("iris"),
            floor: systems
                .iter()
                .filter(|(k, _)| k == "tokio")
                .cloned()
                .collect(),
            peers: systems
                .iter()
                .filter(|(k, _)| k != "iris" && k != "tokio")
                .cloned()
                .collect(),
            target: (spec.target != Target::default()).then_some(spec.target),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(json: &str) -> Row {
        Row::from_json("python", &Json::parse(json).unwrap()).unwrap()
    }

    #[test]
    fn ratios_and_targets_of_suite_rows() {
        let r = row(
            r#"{"scenario": "sink", "unit": "msg/s", "higher_is_better": true, "iris": 1234.0,
                "peers": {"asyncio": 100.0, "threading": 200.0},
                "target": {"ratio": 1.0, "against": "threading"}}"#,
        );
        assert_eq!(r.best_peer(), Some(("threading", 200.0)));
        assert!((r.ratio().unwrap() - 6.17).abs() < 0.01);
        assert_eq!(r.met(), Some(true));

        // Lower is better: the ratio is best / iris, and a max bounds Iris itself.
        let t = row(
            r#"{"scenario": "skynet", "unit": "ms", "higher_is_better": false, "iris": 800,
                "peers": {"beam": 1200, "actix": 400}, "target": {"ratio": 2, "against": "beam", "max": 1000}}"#,
        );
        assert_eq!(t.best_peer(), Some(("actix", 400.0)));
        assert_eq!(t.ratio(), Some(0.5));
        assert_eq!(t.met(), Some(false)); // 1200/800 = 1.5 < 2
        assert_eq!(t.target_text(), "≥2x beam (is 1.50x), ≤1000 ms");
        let mut fast = t.clone();
        fast.iris = Some(500.0);
        assert_eq!(fast.met(), Some(true));
        fast.iris = Some(1100.0);
        fast.peers = vec![("beam".into(), 5000.0)];
        assert_eq!(fast.met(), Some(false)); // over the 1000 ms bound

        // Against the best peer when `against` is absent; no target, no verdict.
        let b = row(
            r#"{"scenario": "x", "unit": "msg/s", "iris": 3, "peers": {"a": 1, "b": 2}, "target": {"ratio": 2}}"#,
        );
        assert_eq!(b.met(), Some(false));
        let n = row(r#"{"scenario": "x", "unit": "msg/s", "iris": 3, "peers": {}}"#);
        assert_eq!((n.ratio(), n.met()), (None, None));
        // A named peer that did not run cannot be judged.
        let m = row(
            r#"{"scenario": "x", "unit": "ms", "higher_is_better": false, "iris": 3, "peers": {}, "target": {"ratio": 2, "against": "beam"}}"#,
        );
        assert_eq!(m.met(), None);
    }

    #[test]
    fn renders_one_table() {
        let doc = Json::parse(
            r#"{"suite": "node", "rows": [{"scenario": "sink", "unit": "msg/s", "iris": 2500000,
                "peers": {"worker_threads": 1000000}, "target": {"ratio": 2}}, {"bad": 1}]}"#,
        )
        .unwrap();
        let rows = suite_rows(&doc);
        assert_eq!(rows.len(), 1);
        let t = render(&rows, "test cpu");
        assert!(t.starts_with("machine: test cpu\n"), "{t}");
        let last = t.lines().last().unwrap();
        for want in [
            "node",
            "2.50 M msg/s",
            "worker_threads 1.00 M msg/s",
            "2.50x",
            "≥2x best",
            "yes",
        ] {
            assert!(last.contains(want), "{want} missing in {last}");
        }
        assert_eq!(Row::from_json("node", &rows[0].to_json()).unwrap(), rows[0]);
        assert_eq!(human(17.5, "ms"), "17.5 ms");
        assert_eq!(human(7.25, "µs"), "7.25 µs");
        assert_eq!(human(1234.0, "bytes/actor"), "1234 bytes/actor");
    }

    #[test]
    fn reads_criterion_output() {
        let dir = std::env::temp_dir().join(format!("xtask-criterion-{}", std::process::id()));
        let write = |group: &str, f: &str, ns: f64, n: u64| {
            let d = dir.join(group).join(f).join("new");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("estimates.json"),
                format!(
                    r#"{{"median": {{"point_estimate": {ns}}}, "mean": {{"point_estimate": 1}}}}"#
                ),
            )
            .unwrap();
            std::fs::write(
                d.join("benchmark.json"),
                format!(r#"{{"group_id": "{group}", "throughput": {{"Elements": {n}}}}}"#),
            )
            .unwrap();
        };
        write("sink", "iris", 1e8, 1_000_000); // 10 M/s
        write("sink", "kameo", 1e9, 1_000_000); // 1 M/s
        write("sink", "tokio", 5e7, 1_000_000);
        write("mesh_pingpong", "iris", 6e8, 20_000);
        let mut rows = criterion_rows(&dir, None);
        rows.push(row(
            r#"{"scenario": "sink", "unit": "msg/s", "iris": 1, "peers": {}}"#,
        ));
        rows.push(Row {
            suite: "rust".into(),
            scenario: "spawn_idle memory".into(),
            ..rows[0].clone()
        });
        order(&mut rows);
        let names: Vec<_> = rows
            .iter()
            .map(|r| (r.suite.as_str(), r.scenario.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("rust", "spawn_idle memory"),
                ("rust", "sink 1M"),
                ("rust", "mesh pingpong 20k (2 processes)"),
                ("rust", "mesh round trip"),
                ("python", "sink"),
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
        let sink = rows.iter().find(|r| r.scenario == "sink 1M").unwrap();
        assert_eq!(sink.iris, Some(1e7));
        assert_eq!(sink.peers, vec![("kameo".to_string(), 1e6)]);
        assert_eq!(sink.floor, vec![("tokio".to_string(), 2e7)]);
        assert_eq!((sink.ratio(), sink.met()), (Some(10.0), Some(true)));
        let rtt = rows
            .iter()
            .find(|r| r.scenario == "mesh round trip")
            .unwrap();
        assert_eq!((rtt.iris, rtt.met()), (Some(30.0), Some(true)));
        assert!(!rtt.higher_is_better);
        assert!(rows.iter().all(|r| r.scenario != "fanout 100k"));
    }
}
