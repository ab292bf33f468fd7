//! Locks.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, taking the guard even when another thread panicked while holding it.
///
/// For data that every critical section leaves consistent (a counter, a map updated in one
/// call, a connection whose transaction rolls back on drop): there a poisoned lock is still
/// valid, and refusing all further work would be worse than going on.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_still_gives_its_data() {
        let m = std::sync::Arc::new(Mutex::new(vec![1]));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let mut g = m2.lock().unwrap();
            g.push(2);
            panic!("poison the lock");
        })
        .join();
        assert!(m.is_poisoned());
        lock(&m).push(3);
        assert_eq!(*lock(&m), vec![1, 2, 3]);
    }
}
