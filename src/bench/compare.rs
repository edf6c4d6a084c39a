//! `campusg bench --compare BASELINE.json`: this run's figures beside a saved
//! run's, each as a ratio, so that a change shows what it moved. Figures are
//! read from the reports' JSON by path, so a baseline saved by an older
//! version still compares on the figures both have.

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

/// Which way a figure gets better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// The figures compared: a name, where the report keeps it, which way is better.
const FIGURES: [(&str, &str, Better); 11] = [
    (
        "whole system orders/s",
        "/saturation/whole_system_per_sec",
        Better::Higher,
    ),
    ("create-order sagas/s", "/saturation/sagas_per_sec", Better::Higher),
    (
        "observers behind (s)",
        "/saturation/observers_behind_secs",
        Better::Lower,
    ),
    ("latency p50 (ms)", "/latency/p50_ms", Better::Lower),
    ("latency p99 (ms)", "/latency/p99_ms", Better::Lower),
    ("full lifecycles/s", "/lifecycle/per_sec", Better::Higher),
    ("replay events/s", "/replay/events_per_sec", Better::Higher),
    ("peak RSS (MiB)", "/peak_rss_mib", Better::Lower),
    ("floor: bus records/s", "/floor/bus_records_per_sec", Better::Higher),
    ("floor: store appends/s", "/floor/store_appends_per_sec", Better::Higher),
    ("records per saga", "/share/messages_per_saga", Better::Lower),
];

/// One figure of both runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Compared {
    pub figure: &'static str,
    pub baseline: Option<f64>,
    pub now: Option<f64>,
    /// Now over the baseline, when both have the figure and the baseline is not 0.
    pub ratio: Option<f64>,
    pub better: Better,
}

/// A report saved with `--json`.
pub fn read_baseline(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let baseline: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not a bench report in JSON", path.display()))?;
    anyhow::ensure!(
        baseline.pointer("/saturation").is_some(),
        "{} is not a bench report (saved with `campusg bench --json`)",
        path.display()
    );
    Ok(baseline)
}

/// Every figure of `now` beside the same figure of `baseline`.
pub fn figures(baseline: &Value, now: &Value) -> Vec<Compared> {
    FIGURES
        .iter()
        .map(|&(figure, path, better)| {
            let baseline = baseline.pointer(path).and_then(Value::as_f64);
            let now = now.pointer(path).and_then(Value::as_f64);
            let ratio = match (baseline, now) {
                (Some(before), Some(after)) if before != 0.0 => Some(after / before),
                _ => None,
            };
            Compared {
                figure,
                baseline,
                now,
                ratio,
                better,
            }
        })
        .collect()
}

/// The comparison as a table: figure, baseline, now, ratio, and whether it
/// moved the better way.
pub fn table(compared: &[Compared]) -> String {
    let number = |value: Option<f64>| value.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    let mut out = String::from("\ncompared with the baseline:\n");
    let width = compared.iter().map(|c| c.figure.len()).max().unwrap_or(0);
    for c in compared {
        let verdict = match (c.ratio, c.better) {
            (Some(r), _) if (r - 1.0).abs() < 0.02 => "same",
            (Some(r), Better::Higher) if r > 1.0 => "better",
            (Some(r), Better::Lower) if r < 1.0 => "better",
            (Some(_), _) => "worse",
            (None, _) => "",
        };
        let ratio = c.ratio.map_or_else(|| "-".to_string(), |r| format!("x{r:.2}"));
        let _ = writeln!(
            out,
            "  {:<width$}  {:>12}  {:>12}  {:>7}  {verdict}",
            c.figure,
            number(c.baseline),
            number(c.now),
            ratio
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    fn report(whole: f64, p99: f64) -> Value {
        json!({"saturation": {"whole_system_per_sec": whole, "sagas_per_sec": whole * 2.0}, "latency": {"p99_ms": p99}})
    }

    fn figure<'a>(compared: &'a [Compared], name: &str) -> &'a Compared {
        compared.iter().find(|c| c.figure == name).unwrap()
    }

    #[test]
    fn each_figure_is_the_ratio_of_now_to_the_baseline() {
        let compared = figures(&report(40.0, 1600.0), &report(400.0, 80.0));

        let whole = figure(&compared, "whole system orders/s");
        assert_eq!(
            (whole.baseline, whole.now, whole.ratio),
            (Some(40.0), Some(400.0), Some(10.0))
        );
        assert_eq!(figure(&compared, "latency p99 (ms)").ratio, Some(0.05));
    }

    #[test]
    fn a_figure_one_run_lacks_is_shown_without_a_ratio() {
        let older = json!({"saturation": {"sagas_per_sec": 100.0}});

        let compared = figures(&older, &report(40.0, 1600.0));

        let whole = figure(&compared, "whole system orders/s");
        assert_eq!((whole.baseline, whole.ratio), (None, None));
        assert_eq!(figure(&compared, "create-order sagas/s").ratio, Some(0.8));
    }

    #[rstest]
    #[case::faster(report(40.0, 1600.0), report(80.0, 1600.0), "better")]
    #[case::slower(report(80.0, 1600.0), report(40.0, 1600.0), "worse")]
    #[case::within_two_percent(report(100.0, 1600.0), report(101.0, 1600.0), "same")]
    fn the_table_says_which_way_each_figure_moved(#[case] baseline: Value, #[case] now: Value, #[case] verdict: &str) {
        let table = table(&figures(&baseline, &now));

        let line = table.lines().find(|l| l.contains("whole system orders/s")).unwrap();
        assert!(line.trim_end().ends_with(verdict), "{line}");
    }

    #[test]
    fn a_lower_latency_is_better() {
        let table = table(&figures(&report(40.0, 1600.0), &report(40.0, 80.0)));

        let line = table.lines().find(|l| l.contains("latency p99")).unwrap();
        assert!(line.trim_end().ends_with("better"), "{line}");
    }

    #[test]
    fn a_file_that_is_not_a_report_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.json");
        std::fs::write(&path, r#"{"hello": 1}"#).unwrap();

        let refused = read_baseline(&path).unwrap_err().to_string();

        assert!(
            refused.contains("notes.json") && refused.contains("not a bench report"),
            "{refused}"
        );
    }
}
