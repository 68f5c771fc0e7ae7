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
    // The rule itself, on exact durations (a test measuring real time
    // could see a preempted thread's wait as a long one). A wait that
    // slept but was over within the most a spin may last (a large
    // message's copy): the budget covers it twice over.
    spin.adapt(Duration::from_micros(60), true);
    assert_eq!(spin.time, Duration::from_micros(120));
    // ... never past the most.
    spin.adapt(Duration::from_micros(180), true);
    assert_eq!(spin.time, MAX_SPIN_TIME);
    // A longer wait that slept halves it.
    spin.adapt(MAX_SPIN_TIME + Duration::from_nanos(1), true);
    assert_eq!(spin.time, MAX_SPIN_TIME / 2);
    // Success while spinning keeps a budget that covers it, never less
    // than it was.
    spin.time = MIN_SPIN_TIME;
    spin.adapt(Duration::from_micros(40), false);
    assert_eq!(spin.time, Duration::from_micros(80));
    spin.adapt(Duration::from_micros(10), false);
    assert_eq!(spin.time, Duration::from_micros(80));
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
    // While time is left, the next reading goes on spinning (an hour's
    // budget: a preempted test thread must not spend it).
    wait.time = Some(Duration::from_secs(3600));
    wait.polls += CLOCK_EVERY;
    assert!(wait.spin_left());
    wait.time = Some(MAX_SPIN_TIME);
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

/// A notify with nobody announced costs its fence and one load, nothing
/// more: the event word (its epoch) is left as it was, and no wake-up is
/// made. With a sleeper announced, it bumps the epoch once. (Waking
/// regardless would stay correct, a system call per message slower: the
/// models see only lost wake-ups, so this is where that is checked.)
#[test]
fn notify_wakes_only_when_a_sleeper_is_announced() {
    let memory = crate::shm::Mapped::heap(crate::shm::Geometry::default(), 0).unwrap();
    let word = || memory.event(Event::Data).load(Relaxed);
    let before = word();
    notify(&memory, Event::Data);
    assert_eq!(word(), before, "a notify with nobody asleep");
    let ticket = announce(&memory, Event::Data);
    notify(&memory, Event::Data);
    assert_eq!(epoch(word()), epoch(before).wrapping_add(1), "one wake-up");
    assert_eq!(sleepers(word()), 1, "the sleeper stays announced");
    let _ = ticket;
    retract(&memory, Event::Data, SLEEPER);
    assert_eq!(sleepers(word()), 0);
}
