//! Prints the zoo table: every architecture with its input, parameters,
//! multiply-accumulates and the study's "ops". `--json` for machines.

use models::cost::grouped;
use models::zoo::ZOO;

fn main() {
    let json = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--json") => true,
        Some(other) => {
            eprintln!("zoo: unknown argument '{other}' (usage: zoo [--json])");
            std::process::exit(2);
        }
    };
    let rows: Vec<_> = ZOO
        .iter()
        .map(|arch| {
            let graph = arch.graph();
            let cost = models::cost(&graph).expect("zoo graphs are valid");
            (arch, graph.preprocess.input_size(), cost)
        })
        .collect();
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(a, (h, w), c)| {
                serde_json::json!({"model": a.name, "input": [3, h, w], "params": c.params,
                                   "macs": c.macs, "ops": c.ops, "summary": a.summary})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list).expect("json"));
        return;
    }
    println!("| model | input | params | MACs | ops | layers |");
    println!("|---|---|---:|---:|---:|---|");
    for (a, (h, w), c) in rows {
        println!(
            "| {} | 3x{h}x{w} | {} | {:.2}M | {:.2}M | {} |",
            a.name,
            grouped(c.params),
            c.macs as f64 / 1e6,
            c.ops as f64 / 1e6,
            a.summary
        );
    }
}
