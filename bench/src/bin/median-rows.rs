//! Reads the markdown rows a benchmark printed over repeated runs (one row
//! per case per run) and prints one row per case: the cells that name the
//! case (`--key-cells`, the first N), the number of runs, then the median of
//! every figure with its range over the runs in brackets. Rows keep the order
//! in which their case first appeared; header and separator rows are skipped.
//!
//! `scripts/bench.sh` uses it for every table it repeats.

use std::io::Read;

use clap::Parser;
use provider_sync_bench::stats::quantile;

#[derive(Debug, Parser)]
struct Args {
    /// How many leading cells name a case (e.g. server, clients, interval).
    #[arg(long, default_value_t = 1)]
    key_cells: usize,
}

/// Cells of a markdown table row, trimmed; `None` for anything else.
fn cells(line: &str) -> Option<Vec<&str>> {
    let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.split('|').map(str::trim).collect())
}

fn summarize(rows: &str, key_cells: usize) -> Vec<String> {
    let mut groups: Vec<(Vec<&str>, Vec<Vec<f64>>)> = Vec::new();
    for row in rows.lines().filter_map(cells) {
        if row.len() <= key_cells || row[key_cells].parse::<f64>().is_err() {
            continue; // a header or separator row
        }
        let (key, values) = row.split_at(key_cells);
        let values: Vec<f64> = values
            .iter()
            .map(|v| v.parse().unwrap_or(f64::NAN))
            .collect();
        match groups.iter_mut().find(|(k, _)| k.as_slice() == key) {
            Some((_, runs)) => runs.push(values),
            None => groups.push((key.to_vec(), vec![values])),
        }
    }
    groups
        .into_iter()
        .map(|(key, runs)| {
            let columns = runs.iter().map(Vec::len).min().unwrap_or(0);
            let figures = (0..columns).map(|c| {
                let mut column: Vec<f64> = runs.iter().map(|run| run[c]).collect();
                column.sort_by(f64::total_cmp);
                let (low, high) = (column[0], column[column.len() - 1]);
                let median = quantile(&column, 0.5);
                if runs.len() == 1 || low == high {
                    format!("{median}")
                } else {
                    format!("{median} ({low}–{high})")
                }
            });
            let cells: Vec<String> = key
                .iter()
                .map(|k| k.to_string())
                .chain([runs.len().to_string()])
                .chain(figures)
                .collect();
            format!("| {} |", cells.join(" | "))
        })
        .collect()
}

fn main() -> std::io::Result<()> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let args = Args::parse();
    for row in summarize(&input, args.key_cells) {
        println!("{row}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ranges_per_group_in_first_seen_order() {
        let rows = "\
| server | clients | write every ms | p50 |
| --- | ---: | ---: | ---: |
| a | 10 | 100 | 3.0 |
| b | 10 | 100 | 9 |
| a | 10 | 100 | 1.0 |
| a | 10 | 100 | 2.0 |
| a | 20 | 100 | 5.5 |
";
        assert_eq!(
            summarize(rows, 3),
            [
                "| a | 10 | 100 | 3 | 2 (1–3) |",
                "| b | 10 | 100 | 1 | 9 |",
                "| a | 20 | 100 | 1 | 5.5 |",
            ]
        );
        let one_key = "| a | 1 |\n| a | 3 |\n| b | x |\n";
        assert_eq!(summarize(one_key, 1), ["| a | 2 | 1 (1–3) |"]);
    }
}
