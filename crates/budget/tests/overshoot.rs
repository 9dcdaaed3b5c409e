#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! The overshoot bound: a hard budget's spend exceeds its amount by at most
//! what admitted requests cost beyond their reservations; with reservations
//! at or above the real cost, never.

use std::sync::Arc;

use blastdoor_budget::{Book, Reservation};
use blastdoor_store::{BudgetRecord, BudgetScope};
use proptest::prelude::*;

const NOW: i64 = 1_795_804_410_000;

fn book(amount: i64, mode: &str) -> Book {
    let book = Book::default();
    let record = BudgetRecord {
        scope: BudgetScope::Team,
        target: "media".into(),
        amount_micros: amount,
        period: "total".into(),
        mode: mode.into(),
        alerts: vec![50, 80, 100],
        created_at: 0,
        updated_at: 0,
    };
    book.replace(vec![(record, 0)], NOW);
    book
}

#[derive(Debug, Clone)]
enum Op {
    /// A request arrives with a reservation and what it will really cost.
    Start { estimate: i64, actual: i64 },
    /// The n-th request in flight (modulo) settles.
    Finish(usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            (0..500i64, 0..800i64).prop_map(|(estimate, actual)| Op::Start { estimate, actual }),
            (0..64usize).prop_map(Op::Finish),
        ],
        1..300,
    )
}

proptest! {
    #[test]
    fn spend_stays_within_the_amount_plus_what_exceeded_reservations(amount in 1..20_000i64, ops in ops()) {
        let book = book(amount, "hard");
        let budget = Arc::clone(&book.all()[0]);
        let mut in_flight: Vec<(Reservation, i64, i64)> = Vec::new();
        let mut bound = amount;
        let mut model_used = 0i64;
        for op in ops {
            match op {
                Op::Start { estimate, actual } => {
                    let admitted = book.reserve(book.applicable(None, Some("media"), "svc"), estimate, NOW);
                    let fits = model_used < amount && model_used + estimate <= amount;
                    prop_assert_eq!(admitted.is_ok(), fits, "admission is exact in a single thread");
                    if let Ok(r) = admitted {
                        model_used += estimate;
                        bound += (actual - estimate).max(0);
                        in_flight.push((r, estimate, actual));
                    }
                }
                Op::Finish(n) if !in_flight.is_empty() => {
                    let (r, estimate, actual) = in_flight.swap_remove(n % in_flight.len());
                    r.settle(actual);
                    model_used += actual - estimate;
                }
                Op::Finish(_) => {}
            }
            prop_assert!(budget.spent() <= bound, "spent {} > bound {}", budget.spent(), bound);
        }
        for (r, _, actual) in in_flight.drain(..) {
            r.settle(actual);
        }
        prop_assert!(budget.spent() <= bound);
        prop_assert_eq!(budget.reserved(), 0, "nothing stays reserved");
    }

    #[test]
    fn reservations_at_or_above_the_cost_never_overshoot(amount in 1..20_000i64, costs in prop::collection::vec((0..500i64, 0..=100i64), 1..300)) {
        let book = book(amount, "hard");
        let budget = Arc::clone(&book.all()[0]);
        let mut in_flight = Vec::new();
        for (i, (estimate, percent)) in costs.into_iter().enumerate() {
            if let Ok(r) = book.reserve(book.applicable(None, Some("media"), "svc"), estimate, NOW) {
                in_flight.push((r, estimate * percent / 100));
            }
            if i % 3 == 0 && let Some((r, actual)) = in_flight.pop() {
                r.settle(actual);
            }
        }
        for (r, actual) in in_flight {
            r.settle(actual);
        }
        prop_assert!(budget.spent() <= amount);
    }
}

#[test]
fn concurrent_admission_from_many_threads_holds_the_cap() {
    let book = Arc::new(book(100_000, "hard"));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let book = Arc::clone(&book);
            std::thread::spawn(move || {
                let mut admitted = 0;
                for i in 0..2000 {
                    let cost = 1 + (t * 31 + i) % 97;
                    if let Ok(r) =
                        book.reserve(book.applicable(None, Some("media"), "svc"), cost, NOW)
                    {
                        admitted += 1;
                        r.settle(cost);
                    }
                }
                admitted
            })
        })
        .collect();
    let admitted: i64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let budget = &book.all()[0];
    assert!(budget.spent() <= 100_000, "spent {}", budget.spent());
    assert!(
        budget.spent() > 100_000 - 97,
        "the budget was used up: {}",
        budget.spent()
    );
    assert!(admitted < 16_000, "some were refused");
    assert_eq!(budget.reserved(), 0);
}

#[test]
fn soft_budgets_admit_and_alert_once_per_threshold() {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let book = Book::new(Some(tx));
    let record = BudgetRecord {
        scope: BudgetScope::Key,
        target: "k1".into(),
        amount_micros: 1000,
        period: "day".into(),
        mode: "soft".into(),
        alerts: vec![100, 50, 80],
        created_at: 0,
        updated_at: 0,
    };
    book.replace(vec![(record, 0)], NOW);
    for _ in 0..15 {
        let r = book
            .reserve(book.applicable(Some("k1"), None, "svc"), 100, NOW)
            .expect("soft budgets never refuse");
        r.settle(100);
    }
    let thresholds: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|a| a.threshold)
        .collect();
    assert_eq!(thresholds, vec![50, 80, 100]);
    assert_eq!(
        book.all()[0].spent(),
        1500,
        "soft: spend goes past the amount"
    );
}

#[test]
fn a_new_period_resets_spend_but_keeps_reservations() {
    let book = book(1000, "hard");
    let day = BudgetRecord {
        scope: BudgetScope::Service,
        target: "svc".into(),
        amount_micros: 1000,
        period: "day".into(),
        mode: "hard".into(),
        alerts: vec![],
        created_at: 0,
        updated_at: 0,
    };
    book.replace(vec![(day, 900)], NOW);
    let applicable = || book.applicable(None, None, "svc");
    assert!(
        book.reserve(applicable(), 200, NOW).is_err(),
        "900 + 200 > 1000"
    );
    let held = book.reserve(applicable(), 100, NOW).unwrap();
    let tomorrow = NOW + 86_400_000;
    let r = book.reserve(applicable(), 800, tomorrow).unwrap();
    let budget = &book.all()[0];
    assert_eq!(budget.spent(), 0);
    assert_eq!(budget.reserved(), 900);
    assert!(book.reserve(applicable(), 101, tomorrow).is_err());
    held.settle(100);
    r.settle(0);
    assert_eq!(budget.spent(), 100);
    assert_eq!(budget.reserved(), 0);
    // The day after rolls again: each period knows where it ends.
    let next_day = tomorrow + 86_400_000;
    assert!(book.reserve(applicable(), 950, tomorrow).is_err());
    book.reserve(applicable(), 950, next_day)
        .unwrap()
        .settle(950);
    assert_eq!(budget.spent(), 950);
    assert_eq!(budget.period_start(), budget.period.start(next_day));
}

#[test]
fn a_refusal_names_the_budget_and_releases_what_it_held() {
    let book = Book::default();
    let rec = |scope, target: &str, amount| BudgetRecord {
        scope,
        target: target.into(),
        amount_micros: amount,
        period: "month".into(),
        mode: "hard".into(),
        alerts: vec![],
        created_at: 0,
        updated_at: 0,
    };
    book.replace(
        vec![
            (rec(BudgetScope::Key, "k1", 10_000_000), 0),
            (rec(BudgetScope::Team, "media", 5_000_000), 4_990_000),
        ],
        NOW,
    );
    let err = book
        .reserve(
            book.applicable(Some("k1"), Some("media"), "svc"),
            20_000,
            NOW,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the monthly budget of team media ($5) is spent: $4.99 spent, $0 reserved by requests in flight"
    );
    let key = book
        .all()
        .into_iter()
        .find(|b| b.scope == BudgetScope::Key)
        .unwrap();
    assert_eq!(key.reserved(), 0, "the key's reservation was rolled back");
}
