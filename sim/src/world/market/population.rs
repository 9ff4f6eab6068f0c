//! The listed population's bookkeeping: slots (reused after a delisting) in one pool per
//! class for O(1) uniform picks and removals, fresh names, and the daily option batches.

use jiff::civil::Date;
use rand::RngExt;

use super::calendar::{CLOSE, OPEN, add_days, is_weekday, yymmdd};
use super::names::{option_symbol, random_crypto, random_live_strike, random_stock};
use super::{Class, MAX_NAME_ATTEMPTS, Market, UNLISTED};

impl Market {
    pub(super) fn add(&mut self, name: String, class: Class, listed_at: i64) -> u32 {
        let slot = match self.free.pop() {
            Some(slot) => {
                let s = slot as usize;
                self.names[s] = name;
                self.class[s] = class;
                self.listed_at[s] = listed_at;
                slot
            }
            None => {
                self.names.push(name);
                self.class.push(class);
                self.listed_at.push(listed_at);
                self.position.push(UNLISTED);
                (self.names.len() - 1) as u32
            }
        };
        let pool = &mut self.pools[class as usize];
        self.position[slot as usize] = pool.len();
        pool.push(slot);
        slot
    }

    /// Delists a slot and returns its name.
    pub(super) fn remove(&mut self, slot: u32) -> Option<String> {
        let s = slot as usize;
        let pos = *self.position.get(s)?;
        if pos == UNLISTED {
            return None;
        }
        let pool = &mut self.pools[self.class[s] as usize];
        pool.swap_remove(pos);
        if let Some(&moved) = pool.get(pos) {
            self.position[moved as usize] = pos;
        }
        self.position[s] = UNLISTED;
        self.free.push(slot);
        Some(std::mem::take(&mut self.names[s]))
    }

    /// Lists a stock or crypto pair under `preferred` if that name is free, else a fresh
    /// random one; the listing is skipped after [`MAX_NAME_ATTEMPTS`] taken names.
    pub(super) fn list_fresh(
        &mut self,
        class: Class,
        preferred: Option<String>,
        at_ms: i64,
        out: Option<&mut Vec<String>>,
    ) {
        let mut candidates = preferred.into_iter();
        for _ in 0..MAX_NAME_ATTEMPTS {
            let name = candidates.next().unwrap_or_else(|| match class {
                Class::Crypto => random_crypto(&mut self.rng),
                _ => random_stock(&mut self.rng),
            });
            if self.taken.insert(name.clone()) {
                if let Some(out) = out {
                    out.push(name.clone());
                }
                self.add(name, class, at_ms);
                return;
            }
        }
    }

    /// The contracts of earlier weekdays still alive at `start_ms` (and today's, when the
    /// start is after the open), so the option population starts in steady state.
    pub(super) fn list_initial_options(&mut self, start_ms: i64) {
        let Some(start_date) = self.calendar.date_of(start_ms) else {
            return;
        };
        let expiry_days = i64::from(self.tickers.option_expiry_days);
        // At most option_expiry_days + 1 (≤ 367) days.
        for back in (0..=expiry_days).rev() {
            let Some(date) = add_days(start_date, -back) else {
                continue;
            };
            let Some(open_ms) = self.calendar.at(date, OPEN) else {
                continue;
            };
            if is_weekday(date) && open_ms <= start_ms {
                self.list_options(date, open_ms, start_ms, None);
            }
        }
        let opened_today = self
            .calendar
            .at(start_date, OPEN)
            .is_some_and(|open| open <= start_ms);
        self.last_option_date = if opened_today {
            Some(start_date)
        } else {
            start_date.yesterday().ok()
        };
    }

    /// Lists `options_per_day` contracts on `date` at `at_ms` on random listed stocks,
    /// expiring at 16:00 ET `option_expiry_days` later — unless that is not after `now_ms`.
    pub(super) fn list_options(
        &mut self,
        date: Date,
        at_ms: i64,
        now_ms: i64,
        mut out: Option<&mut Vec<String>>,
    ) {
        let Some(expiry_date) = add_days(date, i64::from(self.tickers.option_expiry_days)) else {
            return;
        };
        let Some(expiry_ms) = self.calendar.at(expiry_date, CLOSE) else {
            return;
        };
        if expiry_ms <= now_ms {
            return;
        }
        let code = yymmdd(expiry_date);
        self.day_options.clear();
        let mut batch = Vec::with_capacity(self.tickers.options_per_day);
        for _ in 0..self.tickers.options_per_day {
            let stocks = self.pools[Class::Stock as usize].len();
            if stocks == 0 {
                break;
            }
            for _ in 0..MAX_NAME_ATTEMPTS {
                let root = self.pools[Class::Stock as usize][self.rng.random_range(0..stocks)];
                let call = self.rng.random_bool(0.5);
                let strike = random_live_strike(&mut self.rng);
                let name = option_symbol(&self.names[root as usize], &code, call, strike);
                if self.day_options.insert(name.clone()) {
                    if let Some(out) = out.as_deref_mut() {
                        out.push(name.clone());
                    }
                    batch.push(self.add(name, Class::Option, at_ms));
                    break;
                }
            }
        }
        self.expiries.entry(expiry_ms).or_default().extend(batch);
    }
}
