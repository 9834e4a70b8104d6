//! The one error of the registry's `configure*` methods: the name is taken.

use std::sync::Arc;

use crate::{Bulkhead, CircuitBreaker, RetryBudget};

/// A `configure*` method of the [`Registry`](crate::Registry) was called for a name that is
/// already taken; `existing` is what has it (a [`CircuitBreaker`], a
/// [`Bulkhead`] or a [`RetryBudget`]). One error type for every policy.
#[derive(Debug, Clone)]
pub struct AlreadyExists<T = CircuitBreaker> {
    /// What already has the name.
    pub existing: Arc<T>,
}

/// What a [`Registry`](crate::Registry) holds by name (sealed: implemented for the registry's
/// policies only).
pub trait Registered: sealed::Sealed {
    /// What it is, for messages (`circuit breaker`).
    const KIND: &'static str;
    /// Its name.
    fn registered_name(&self) -> &str;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::CircuitBreaker {}
    impl Sealed for super::Bulkhead {}
    impl Sealed for super::RetryBudget {}
}

impl Registered for CircuitBreaker {
    const KIND: &'static str = "circuit breaker";
    fn registered_name(&self) -> &str {
        self.name()
    }
}

impl Registered for Bulkhead {
    const KIND: &'static str = "bulkhead";
    fn registered_name(&self) -> &str {
        self.name()
    }
}

impl Registered for RetryBudget {
    const KIND: &'static str = "retry budget";
    fn registered_name(&self) -> &str {
        self.name()
    }
}

impl<T: Registered> std::fmt::Display for AlreadyExists<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} `{}` already exists; configure it before its first use",
            T::KIND,
            self.existing.registered_name()
        )
    }
}

impl<T: Registered + std::fmt::Debug> std::error::Error for AlreadyExists<T> {}
