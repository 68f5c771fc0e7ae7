//! Unit tests of the spin budget and the event word.

use super::*;

/// A finished wait of `polls` polls whose clock started `spun` ago,
/// and that slept since `slept` ago if given.
fn waited(spin: &Spin, spun: Duration, slept: Option<Duration>) -> Wait {
    let mut wait = Wait::new(spin, Event::Data, Role::Producer, Deadline::Never);
    wait.polls = CLOCK_AFTER;
    wait.spinning_since = Some(Instant::now() - spun);
    wait.announced = slept.is_some();
    wait.asleep_since = slept.map(|d| Instant::now() - d);
    wait
}

#[test]
fn budget_adapts_within_bounds() {
    let mut spin = Spin::new(MAX_SPIN);
    assert_eq!(spin.time, MAX_SPIN_TIME);
    // Long waits (idle gaps) halve it down to the floor.
    for _ in 0..20 {
        waited(
            &spin,
            Duration::from_millis(5),
            Some(Duration::from_millis(4)),
        )
        .finish(&mut spin);
    }
    assert_eq!(spin.time, MIN_SPIN_TIME);
    // A wait that slept but was over within the most a spin may last
    // (a large message's copy): the budget covers it twice over.
    waited(
        &spin,
        Duration::from_micros(60),
        Some(Duration::from_micros(55)),
    )
    .finish(&mut spin);
    assert!(spin.time >= Duration::from_micros(120), "{:?}", spin.time);
    // ... never past the most.
    for _ in 0..5 {
        waited(
            &spin,
            Duration::from_micros(180),
            Some(Duration::from_micros(1)),
        )
        .finish(&mut spin);
    }
    assert_eq!(spin.time, MAX_SPIN_TIME);
    // Success while spinning keeps a budget that covers it.
    spin.time = MIN_SPIN_TIME;
    waited(&spin, Duration::from_micros(40), None).finish(&mut spin);
    assert!(spin.time >= Duration::from_micros(80), "{:?}", spin.time);
    // A short wait (no clock read) changes nothing.
    let before = spin.time;
    Wait::new(&spin, Event::Data, Role::Producer, Deadline::Never).finish(&mut spin);
    assert_eq!(spin.time, before);
    // Models: a fixed budget.
    for limit in [0, u32::MAX] {
        let mut spin = Spin::new(limit);
        waited(&spin, Duration::from_secs(1), Some(Duration::from_secs(1))).finish(&mut spin);
        assert_eq!((spin.budget, spin.time), (limit, MAX_SPIN_TIME));
        assert!(!spin.adaptive);
    }
}

#[test]
fn a_spin_reads_the_clock_only_after_its_first_polls() {
    let spin = Spin::new(MAX_SPIN);
    let mut wait = Wait::new(&spin, Event::Data, Role::Producer, Deadline::Never);
    for _ in 0..CLOCK_AFTER {
        assert!(wait.spin_left());
        wait.polls += 1;
    }
    assert!(wait.spinning_since.is_none());
    assert!(wait.spin_left());
    assert!(wait.spinning_since.is_some());
    // While time is left, the next reading goes on spinning.
    wait.polls += CLOCK_EVERY;
    assert!(wait.spin_left());
    // Once the time is spent, the spin ends at the next reading.
    wait.spinning_since = Some(Instant::now() - 2 * MAX_SPIN_TIME);
    wait.polls += CLOCK_EVERY;
    assert!(!wait.spin_left());
}

#[test]
fn event_word_fields() {
    let word = (7u64 << 32) | 2;
    assert_eq!(epoch(word), 7);
    assert_eq!(sleepers(word), 2);
    assert_eq!(epoch(word.wrapping_add(EPOCH)), 8);
    assert_eq!(sleepers(word.wrapping_add(SLEEPER.wrapping_neg())), 1);
    // The epoch wraps without touching the sleeper count.
    assert_eq!(
        sleepers((u64::from(u32::MAX) << 32 | 1).wrapping_add(EPOCH)),
        1
    );
}
