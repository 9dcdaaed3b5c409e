//! The bench summary's statistics (`bench/summarize.py`): the confidence
//! interval it quotes for a median ratio must be the order statistics the
//! binomial distribution picks, whatever order the rounds come in.

use std::path::Path;
use std::process::Command;

#[test]
fn the_median_interval_is_the_binomial_order_statistics() {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench");
    let python = std::env::var("BLASTDOOR_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_string());
    // Rounds 1..=n, shuffled: the interval is given as the ranks it spans.
    let script = r#"
import random, sys
sys.path.insert(0, sys.argv[1])
import summarize
random.seed(7)
for n in (1, 5, 6, 8, 9, 12, 20, 30):
    rounds = list(range(1, n + 1))
    random.shuffle(rounds)
    print(n, summarize.median_ci(rounds))
"#;
    let out = match Command::new(&python)
        // No __pycache__ left in the checkout.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("-c")
        .arg(script)
        .arg(&bench)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED: {python} cannot be run ({e})");
            return;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // n=9: P(B <= 1) = 10/512 <= 2.5%, P(B <= 2) = 46/512 > 2.5%: ranks 2 and 8.
    // n=20: P(B <= 5) = 2.07% and P(B <= 6) = 5.77%: ranks 6 and 15.
    let expected =
        "1 None\n5 None\n6 (1, 6)\n8 (1, 8)\n9 (2, 8)\n12 (3, 10)\n20 (6, 15)\n30 (10, 21)\n";
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}
