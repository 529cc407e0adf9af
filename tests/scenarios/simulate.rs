//! `simulate` on a fresh machine: no AWS settings, so the buckets are local folders and the
//! external effects are previewed; `--dry-run` writes nothing at all.

use std::path::Path;

use wdiv_test_support::World;

fn fixture_path(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/uploads")
        .join(rel)
        .display()
        .to_string()
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                let rel = entry
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .display()
                    .to_string();
                found.push(rel);
            }
        }
    }
    found.sort();
    found
}

/// Only the WDIV settings: no AWS, so the run is local.
fn wdiv_only(world: &World) -> Vec<(String, String)> {
    world
        .settings()
        .into_iter()
        .filter(|(k, _)| k.starts_with("WDIV_"))
        .collect()
}

const PAIR: [&str; 2] = [
    "democracy-counts/stations.csv",
    "democracy-counts/districts.csv",
];

#[tokio::test]
async fn a_local_run_uses_folders_and_previews_the_webhook() {
    let world = World::new().await;
    let stations = fixture_path(PAIR[0]);
    let districts = fixture_path(PAIR[1]);
    let args = [
        "simulate",
        "--council",
        "E07000223",
        "--election-date",
        "2024-05-02",
        &stations,
        &districts,
    ];
    let run = world.cli_with(&args, b"", &wdiv_only(&world)).await;
    run.assert_code(0);

    let files = files_under(&world.dir.path().join("local-buckets"));
    let finals: Vec<&String> = files
        .iter()
        .filter(|f| f.starts_with("wdiv-final/"))
        .collect();
    assert_eq!(finals.len(), 3, "{files:?}");
    assert!(finals.iter().any(|f| f.ends_with("/report.json")));
    assert!(finals.iter().any(|f| f.ends_with("/stations.csv")));
    assert_eq!(
        files
            .iter()
            .filter(|f| f.starts_with("wdiv-temp/E07000223/"))
            .count(),
        2
    );
    // The record of which effects are done, kept out of the upload's prefix.
    assert!(files
        .iter()
        .any(|f| f.starts_with("wdiv-temp/.wdiv-s3-trigger/effects/")));
    // Two events, as S3 would send: each previews the webhook, none posts it.
    assert_eq!(
        run.stdout
            .matches("would do (local run; set DRY_RUN=false to perform it)")
            .count(),
        2,
        "{}",
        run.stdout
    );
    assert!(world.webhook_posts().await.is_empty());
    let copied = std::fs::read(
        world.dir.path().join("local-buckets").join(
            finals
                .iter()
                .find(|f| f.ends_with("/stations.csv"))
                .unwrap(),
        ),
    )
    .unwrap();
    assert_eq!(copied, std::fs::read(&stations).unwrap());
}

#[tokio::test]
async fn dry_run_false_performs_the_external_effects_of_a_local_run() {
    let world = World::new().await;
    let mut env = wdiv_only(&world);
    env.push(("DRY_RUN".into(), "false".into()));
    let file = fixture_path("ems/xpress-weblookup.csv");
    let args = [
        "simulate",
        "--council",
        "E07000223",
        "--election-date",
        "2024-05-02",
        &file,
    ];
    world.cli_with(&args, b"", &env).await.assert_code(0);
    let posts = world.webhook_posts().await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].0["gss"], "E07000223");
    assert_eq!(posts[0].0["file_set"][0]["ems"], "Xpress WebLookup");
}

#[tokio::test]
async fn a_dry_run_simulation_writes_nothing_anywhere() {
    let world = World::new().await;
    let file = fixture_path("records/short-row-in-middle.csv");
    let args = [
        "simulate",
        "--dry-run",
        "--council",
        "E07000223",
        "--election-date",
        "2024-05-02",
        &file,
    ];
    let run = world.cli_with(&args, b"", &wdiv_only(&world)).await;
    run.assert_code(0);
    assert!(!world.dir.path().join("local-buckets").exists());
    assert!(world.webhook_posts().await.is_empty());
    assert!(run
        .stdout
        .contains("Incomplete file: Expected 16 columns on row 7 found 9"));
    assert!(run.stdout.contains("[skip: the upload failed its checks]"));
    assert!(run.stdout.contains("[would do: dry run]"));
}

#[tokio::test]
async fn a_file_name_that_cannot_be_a_key_is_refused() {
    let world = World::new().await;
    let args = [
        "simulate",
        "--council",
        "../etc",
        "--election-date",
        "2024-05-02",
        "Cargo.toml",
    ];
    let run = world.cli_with(&args, b"", &[]).await;
    run.assert_code(2);
    assert!(run.stderr.contains("S3 key"), "{}", run.stderr);
    assert!(!world.dir.path().join("local-buckets").exists());
}
