//! `gatehouse bench tui`: first-frame time, render time and bytes per frame of every console
//! view over a store of N requests, bytes written while idle, and the console's peak memory.
//!
//! Seeding runs in this process; the measurements run in a child process of the same binary
//! against the seeded file, so the peak-RSS figure is what a console needs, not the seeder.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{TerminalOptions, Viewport};
use tokio::sync::mpsc;

use crate::bench::args::BenchTuiArgs;
use crate::failure::{CliError, Context};
use crate::store::api::{Actor, CommandApi, NewRequest, ReadApi};
use crate::store::{OpenOptions, Store};
use crate::tui::action::Action;
use crate::tui::command::Command;
use crate::tui::{TuiOptions, initial_state, render_to_buffer, settle};

const WIDTH: u16 = 200;
const HEIGHT: u16 = 50;

/// Run the console benchmark.
pub async fn run(args: &BenchTuiArgs) -> Result<ExitCode, CliError> {
    if let Some(url) = &args.measure_store {
        return measure(url, args).await;
    }
    let dir = std::env::temp_dir().join(format!("gatehouse-bench-tui-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
    let url = format!("sqlite:{}", dir.join("bench.db").display());
    let outcome = async {
        seed(&url, args.requests).await?;
        let exe = std::env::current_exe().context(|| "locating this binary".into())?;
        let status = std::process::Command::new(exe)
            .args(["bench", "tui", "--measure-store", &url])
            .args([
                "--frames",
                &args.frames.to_string(),
                "--idle-secs",
                &args.idle_secs.to_string(),
            ])
            .args(["--requests", &args.requests.to_string()])
            .status()
            .context(|| "running the measuring child".into())?;
        Ok::<_, CliError>(if status.success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

async fn seed(url: &str, requests: u32) -> Result<(), CliError> {
    let store = Store::open(url, OpenOptions::default())
        .await
        .context(|| "opening the bench store".into())?;
    store.migrate().await.context(|| "migrating".into())?;
    let actor = Actor::operator("bench", "bench");
    let target =
        std::path::PathBuf::from(url.trim_start_matches("sqlite:")).with_file_name("target.db");
    crate::demo::seed(&store, &actor, &target).await?;
    let start = Instant::now();
    let mut generator = crate::demo::generator::Generator::new(1);
    let today = chrono::Utc::now().date_naive();
    // A few writers in parallel keep the single SQLite writer busy without waiting on us.
    let per_task = requests.div_ceil(4);
    let mut tasks = Vec::new();
    for t in 0..4u32 {
        let store = store.clone();
        let actor = actor.clone();
        let batch: Vec<NewRequest> = (0..per_task.min(requests.saturating_sub(t * per_task)))
            .map(|_| generator.next_request(today))
            .collect();
        tasks.push(tokio::spawn(async move {
            for r in batch {
                store.create_request(&actor, r).await?;
            }
            Ok::<_, crate::store::error::StoreError>(())
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| CliError::msg("seeding", e.to_string()))?
            .context(|| "seeding requests".into())?;
    }
    println!(
        "bench tui: seeded {requests} requests in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    store.close().await;
    Ok(())
}

/// Counts the bytes a terminal backend writes.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn peak_rss_kib() -> Option<u64> {
    super::proc_status_kib("self", "VmHWM")
}

const VIEWS: &[(&str, Command)] = &[
    ("overview", Command::GoOverview),
    ("approvals", Command::GoApprovals),
    ("requests", Command::GoRequests),
    ("queues", Command::GoQueues),
    ("logs", Command::GoLogs),
    ("workers", Command::GoWorkers),
    ("configs", Command::GoConfigs),
    ("audit", Command::GoAudit),
];

async fn measure(url: &str, args: &BenchTuiArgs) -> Result<ExitCode, CliError> {
    let options = TuiOptions {
        operator: Actor::operator("bench", "bench"),
        role: "admin".into(),
        read_only: false,
        theme: "default".into(),
        config_dir: None,
        log_file: None,
    };
    let area = Rect::new(0, 0, WIDTH, HEIGHT);

    // First frame: open the store, load the first view, draw.
    let start = Instant::now();
    let store = Store::open(
        url,
        OpenOptions {
            read_only: true,
            max_connections: crate::tui::CONSOLE_CONNECTIONS,
            ..Default::default()
        },
    )
    .await
    .context(|| "opening the seeded store".into())?;
    let opened = start.elapsed();
    let (mut state, _) = initial_state(&options, chrono::Utc::now().timestamp_millis());
    state.size = (WIDTH, HEIGHT);
    let effects = state.init();
    settle(&mut state, &store, effects).await;
    let _ = render_to_buffer(&state, area);
    let first_frame = start.elapsed();
    println!(
        "bench tui: {} requests, {WIDTH}x{HEIGHT}, {} frames per view",
        args.requests, args.frames
    );
    println!(
        "  first frame (open store, load, draw): {:.1} ms (store open {:.1} ms)",
        first_frame.as_secs_f64() * 1000.0,
        opened.as_secs_f64() * 1000.0
    );

    let counter = Counter::default();
    let backend = CrosstermBackend::new(counter.clone());
    let mut terminal = Terminal::with_options(
        backend,
        TerminalOptions {
            viewport: Viewport::Fixed(area),
        },
    )
    .context(|| "creating the measuring terminal".into())?;
    println!(
        "  {:<10} {:>9} {:>9} {:>12} {:>14}",
        "view", "p50 ms", "p99 ms", "full frame B", "row change B"
    );
    for (name, command) in VIEWS {
        let effects = state.exec(*command);
        settle(&mut state, &store, effects).await;
        let mut times = Vec::with_capacity(args.frames as usize);
        for _ in 0..args.frames.max(1) {
            let t = Instant::now();
            let buf = render_to_buffer(&state, area);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            std::hint::black_box(buf);
        }
        times.sort_by(f64::total_cmp);
        // Full frame: after a clear everything is written; a row change writes the diff only.
        terminal.clear().context(|| "clearing".into())?;
        let before = counter.0.load(Ordering::Relaxed);
        terminal
            .draw(|f| crate::tui::views::frame::render(&state, f.area(), f.buffer_mut()))
            .context(|| "drawing".into())?;
        let full = counter.0.load(Ordering::Relaxed) - before;
        let effects = state.exec(Command::Down);
        settle(&mut state, &store, effects).await;
        let before = counter.0.load(Ordering::Relaxed);
        terminal
            .draw(|f| crate::tui::views::frame::render(&state, f.area(), f.buffer_mut()))
            .context(|| "drawing".into())?;
        let change = counter.0.load(Ordering::Relaxed) - before;
        println!(
            "  {name:<10} {:>9.3} {:>9.3} {full:>12} {change:>14}",
            super::percentile(&times, 0.5),
            super::percentile(&times, 0.99)
        );
    }

    // Idle: the console's own loop (ticks and store change signals) for idle_secs, drawing
    // only when the state says something changed.
    let (tx, mut rx) = mpsc::unbounded_channel::<Action>();
    let ticks = crate::tui::event::spawn_ticks(tx.clone(), Duration::from_secs(1));
    let changes =
        crate::tui::event::spawn_changes(store.changes(), tx.clone(), Duration::from_millis(150));
    state.dirty = false;
    let before = counter.0.load(Ordering::Relaxed);
    let deadline = tokio::time::sleep(Duration::from_secs(args.idle_secs));
    tokio::pin!(deadline);
    let mut redraws = 0u32;
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            action = rx.recv() => {
                let Some(action) = action else { break };
                let effects = state.update(action);
                settle(&mut state, &store, effects).await;
                if state.dirty {
                    terminal
                        .draw(|f| crate::tui::views::frame::render(&state, f.area(), f.buffer_mut()))
                        .context(|| "drawing".into())?;
                    state.dirty = false;
                    redraws += 1;
                }
            }
        }
    }
    ticks.abort();
    changes.abort();
    let idle_bytes = counter.0.load(Ordering::Relaxed) - before;
    println!(
        "  idle {} s: {idle_bytes} bytes written, {redraws} redraws",
        args.idle_secs
    );
    match peak_rss_kib() {
        Some(kib) => println!("  peak RSS: {:.1} MB", kib as f64 / 1024.0),
        None => println!("  peak RSS: not available (/proc/self/status unreadable)"),
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
