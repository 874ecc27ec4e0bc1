//! `kilowatt bench` end to end at toy scale: the real binary creates its database, starts
//! Kilowatt as a child process, runs the hold, heartbeat and meter scenarios with twenty
//! simulated chargers for two seconds each, and writes its JSON. Not a timed test: it checks
//! that the report has every figure's fields and that every message was answered, not the
//! figures themselves.

use std::process::Command;

use serde_json::Value;

fn admin_url() -> String {
    std::env::var("KILOWATT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://kilowatt:kilowatt@127.0.0.1:5432/postgres".to_owned())
}

fn number(value: &Value, path: &str) -> f64 {
    let found = path.split('.').fold(value, |value, key| &value[key]);
    found.as_f64().unwrap_or_else(|| panic!("{path} is not a number in {value:#}"))
}

#[test]
fn a_small_benchmark_run_reports_every_scenario_with_every_message_answered() {
    let output = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-{}.json", std::process::id()));
    let log = output.with_extension("server.log");
    let run = Command::new(env!("CARGO_BIN_EXE_kilowatt"))
        .args(["bench", "--quick", "--chargers", "20", "--duration", "2", "--scenarios", "hold,heartbeat,meter"])
        .arg("--database-url")
        .arg(admin_url())
        .arg("--output")
        .arg(&output)
        .arg("--server-log")
        .arg(&log)
        .env("KILOWATT_LOG", "warn")
        .output()
        .expect("run kilowatt bench");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "kilowatt bench failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("hold") && stdout.contains("heartbeat") && stdout.contains("meter"), "{stdout}");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&output).expect("JSON written")).expect("JSON");
    let _ = std::fs::remove_file(&output);
    let _ = std::fs::remove_file(&log);
    assert_eq!(report["quick"], true);
    assert_eq!(report["settings"]["chargers"], 20);
    assert!(number(&report, "machine.cpus") >= 1.0);
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    let names: Vec<&str> = scenarios.iter().map(|s| s["name"].as_str().unwrap_or("?")).collect();
    assert_eq!(names, ["hold", "heartbeat", "meter"]);

    for scenario in scenarios {
        let name = scenario["name"].as_str().unwrap_or("?");
        assert_eq!(number(scenario, "connected"), 20.0, "{name}: every charger connected\n{scenario:#}");
        assert!(number(scenario, "window_s") >= 2.0, "{name}");
        number(scenario, "messages.offered_per_s");
        number(scenario, "messages.achieved_per_s");
        // Idle chargers hold quietly (heartbeats every 300 s): no latency to show, but the field.
        let measured = name != "hold";
        if measured {
            assert!(number(scenario, "messages.answered") > 0.0, "{name}: messages measured\n{scenario:#}");
        }
        for percentile in ["p50", "p99", "p999", "max"] {
            let value = &scenario["latency_ms"][percentile];
            assert!(value.is_f64() || (!measured && value.is_null()), "{name}: latency {percentile}\n{scenario:#}");
        }
        number(scenario, "server.cpu_seconds");
        if measured {
            number(scenario, "server.cpu_us_per_message");
        }
        assert!(number(scenario, "server.rss_kb") > 0.0, "{name}: server memory read");
        number(scenario, "server.rss_kb_per_charger");
        let figures = scenario["figures"].as_array().expect("figures");
        assert!(!figures.is_empty(), "{name}: figures");
        for figure in figures {
            assert!(figure["pass"].is_boolean() && figure["target"].is_string() && figure["value"].is_string());
        }
        // Every CALL of the run was answered, none refused, nothing broke.
        let run = &scenario["run"];
        assert_eq!(run["all_answered"], true, "{name}: unanswered CALLs\n{scenario:#}");
        assert_eq!(run["calls"], run["answered"], "{name}");
        assert_eq!(run["call_errors"], 0, "{name}: CALLERRORs\n{scenario:#}");
        assert_eq!(run["errors"], 0, "{name}: errors\n{scenario:#}");
    }

    let heartbeat = &scenarios[1];
    assert!(number(heartbeat, "details.heartbeats_answered") > 0.0, "{heartbeat:#}");
    let meter = &scenarios[2];
    assert!(number(meter, "details.meter_values_answered") > 0.0, "{meter:#}");
    assert!(number(meter, "details.samples_stored") > 0.0, "meter values stored\n{meter:#}");
}
