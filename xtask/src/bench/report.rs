//! The bench's written report: a markdown table of every RESULT and RATIO line of the run and a
//! PNG bar chart of DORA/s per server and path, under `target/bench-report/`.
//!
//! The chart is drawn with plotters' bitmap backend and a TTF font through `ab_glyph` (DejaVu
//! Sans from Debian's fonts-dejavu-core), so no fontconfig or freetype system library is needed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;

/// The font the chart's text is drawn with (install-deps.sh installs fonts-dejavu-core).
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// One measured server run.
#[derive(Debug, Clone)]
pub struct Row {
    pub server: String,
    pub path: String,
    pub dora_per_s: f64,
    pub drops_pct: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Writes `<dir>/<name>.md` and `<dir>/<name>.png`; returns their paths.
pub fn write(
    dir: &Path,
    name: &str,
    title: &str,
    rows: &[Row],
    lines: &[String],
    notes: &[String],
) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let md = dir.join(format!("{name}.md"));
    let png = dir.join(format!("{name}.png"));
    let mut t = String::new();
    writeln!(t, "# {title}\n")?;
    writeln!(
        t,
        "| server | path | DORA/s | drops % | p50 ms | p99 ms |\n|---|---|---:|---:|---:|---:|"
    )?;
    for r in rows {
        writeln!(
            t,
            "| {} | {} | {:.0} | {:.2} | {:.3} | {:.3} |",
            r.server, r.path, r.dora_per_s, r.drops_pct, r.p50_ms, r.p99_ms
        )?;
    }
    writeln!(t, "\n![DORA/s per server and path]({name}.png)\n")?;
    writeln!(t, "## Lines printed\n\n```")?;
    for l in lines {
        writeln!(t, "{l}")?;
    }
    writeln!(t, "```")?;
    if !notes.is_empty() {
        writeln!(t, "\n## Notes\n")?;
        for n in notes {
            writeln!(t, "- {n}")?;
        }
    }
    std::fs::write(&md, t).with_context(|| md.display().to_string())?;
    chart(&png, title, rows)?;
    Ok((md, png))
}

/// Registers [`FONT`] as plotters' "sans-serif", once per process.
pub fn register_font() -> Result<()> {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if DONE.get().is_some() {
        return Ok(());
    }
    let bytes = std::fs::read(FONT)
        .with_context(|| format!("reading {FONT} (apt-get install fonts-dejavu-core)"))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{FONT} is not a usable font"))?;
    let _ = DONE.set(());
    Ok(())
}

fn chart(png: &Path, title: &str, rows: &[Row]) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::new(png, (1200, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let n = rows.len().max(1);
    let top = rows.iter().map(|r| r.dora_per_s).fold(1.0, f64::max) * 1.15;
    let labels: Vec<String> = rows
        .iter()
        .map(|r| {
            if r.path == "-" {
                r.server.clone()
            } else {
                format!("{} {}", r.server, r.path)
            }
        })
        .collect();
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..n as f64, 0f64..top)
        .map_err(|e| anyhow!("{e}"))?;
    c.configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.01 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_desc("DORA exchanges / s")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    let colour = |r: &Row| match r.server.as_str() {
        "provd" => RGBColor(31, 119, 180),
        "null" => RGBColor(160, 160, 160),
        _ => RGBColor(214, 110, 40),
    };
    c.draw_series(rows.iter().enumerate().map(|(i, r)| {
        Rectangle::new(
            [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, r.dora_per_s)],
            colour(r).filled(),
        )
    }))
    .map_err(|e| anyhow!("{e}"))?;
    c.draw_series(rows.iter().enumerate().map(|(i, r)| {
        Text::new(
            format!("{:.0}", r.dora_per_s),
            (i as f64 + 0.2, r.dora_per_s + top * 0.02),
            ("sans-serif", 15),
        )
    }))
    .map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
