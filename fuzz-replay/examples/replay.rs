//! Replay one fuzz input (a crash from `fuzz/artifacts/`, or a corpus
//! file) on stable, with a debugger-friendly build:
//!
//! ```text
//! cargo run -p fuzz-replay --example replay -- drop_chaos fuzz/artifacts/drop_chaos/crash-...
//! cargo run -p fuzz-replay --example replay -- drop_chaos --masked FILE
//! ```

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let masked = args.iter().any(|a| a == "--masked");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--masked").collect();
    let [target, file] = args[..] else {
        eprintln!("usage: replay graph_ops|drop_chaos [--masked] FILE");
        std::process::exit(2);
    };
    let data = std::fs::read(file).expect("read the input");
    match (target.as_str(), masked) {
        ("graph_ops", _) => fuzz_replay::graph_ops::run(&data),
        ("drop_chaos", false) => fuzz_replay::drop_chaos::run(&data),
        ("drop_chaos", true) => fuzz_replay::drop_chaos::run_masked(&data),
        _ => {
            eprintln!("unknown target {target}");
            std::process::exit(2);
        }
    }
    println!("{target}: {file}: ok");
}
