//! What the system trades: the source, its assets, the times of its bars and the
//! prices, plus the decision grid and the mapping of a frame's assets onto the
//! system's.

use std::collections::HashMap;
use std::sync::Arc;

use kf_datapull::MarketData;
use kf_frame::{Frame, Timestamp, View};

use crate::error::{Result, SystemError};
use crate::spec::SystemSpec;

/// The market data behind a system.
///
/// Invariant: `prices` has every row of the source with the price column first and
/// the volume column (when configured) second; `assets` is its asset order, which is
/// the order of every per-asset vector in the system.
#[derive(Debug)]
pub struct Market {
    /// All the market data, with no clock (loaded once: views on a run's clock
    /// share what it loaded).
    pub data: Arc<dyn MarketData>,
    /// The assets, in the system's order.
    pub assets: Vec<String>,
    /// Price (and volume) over all the data.
    pub prices: Frame,
    /// The data's bar period: the smallest step between two bar ends.
    pub freq: i64,
    /// Where the data's bars fall within `freq`: the first bar end modulo `freq`.
    pub offset: i64,
    index: HashMap<String, usize>,
}

impl Market {
    /// Loads the price and volume columns that `spec` names from `data` (a view
    /// with no clock: see [`MarketData::unclocked`]).
    ///
    /// # Errors
    /// The source's read error, a missing price or volume column (listing the
    /// columns there are), or a source without rows.
    pub fn new(data: Arc<dyn MarketData>, spec: &SystemSpec) -> Result<Market> {
        let market = Market::load_after(data, spec, i64::MIN)?;
        if market.prices.is_empty() {
            return Err(SystemError::Invalid(format!(
                "the market data ({}) has no rows: there is nothing to trade",
                market.data.describe()
            )));
        }
        Ok(market)
    }

    /// The market over the bars ending after `after` only (a system continued from
    /// a checkpoint at `after` needs no earlier price), which may be none; `freq`
    /// and `offset` are then those of these bars, which the caller checks against
    /// the whole data's.
    ///
    /// # Errors
    /// As [`Market::new`], but no rows is not an error.
    pub(crate) fn load_after(
        data: Arc<dyn MarketData>,
        spec: &SystemSpec,
        after: i64,
    ) -> Result<Market> {
        let mut cols = vec![spec.price.clone()];
        cols.extend(spec.volume.clone());
        let prices = data
            .data_for_interval(
                Timestamp(after.saturating_add(1)),
                Timestamp::MAX,
                None,
                Some(&cols),
            )
            .map_err(|e| {
                SystemError::Invalid(format!(
                    "[system] price = {:?}, volume = {:?}: the market data ({}) cannot give \
                     these columns: {e}",
                    spec.price,
                    spec.volume.as_deref().unwrap_or(""),
                    data.describe()
                ))
            })?;
        let freq = min_step(prices.end_ts()).unwrap_or(60_000_000_000).max(1);
        let offset = prices.end_ts().first().map_or(0, |t| t.rem_euclid(freq));
        let assets = prices.assets().to_vec();
        let index = slots(&assets);
        Ok(Market {
            data,
            assets,
            prices,
            freq,
            offset,
            index,
        })
    }

    /// The market of a live system: the declared `assets` and bar period, with no
    /// price yet (they arrive through `data` while it runs).
    ///
    /// # Errors
    /// A repeated asset.
    pub(crate) fn declared(
        data: Arc<dyn MarketData>,
        assets: Vec<String>,
        freq: i64,
        spec: &SystemSpec,
    ) -> Result<Market> {
        let mut cols = vec![spec.price.clone()];
        cols.extend(spec.volume.clone());
        let prices = Frame::empty(assets.clone(), cols)
            .map_err(|e| SystemError::Invalid(format!("the live universe: {e}")))?;
        let index = slots(&assets);
        Ok(Market {
            data,
            assets,
            prices,
            freq,
            offset: 0,
            index,
        })
    }

    /// The decision times: every multiple of `spec.bar` that closes at least one bar
    /// of data, within `[start, end]`.
    ///
    /// # Errors
    /// None of them falls within `[start, end]`.
    pub fn decision_times(&self, spec: &SystemSpec) -> Result<Vec<i64>> {
        let grid = self.decision_times_after(spec, i64::MIN);
        if grid.is_empty() {
            return Err(SystemError::Invalid(format!(
                "no decision time: the data's bars ({} to {}) do not meet [system] start/end",
                kf_frame::Timestamp(self.prices.end_ts()[0]),
                kf_frame::Timestamp(self.prices.end_ts()[self.prices.n_rows() - 1]),
            )));
        }
        Ok(grid)
    }

    /// The decision times after `after` (see [`Market::decision_times`]); maybe none.
    pub(crate) fn decision_times_after(&self, spec: &SystemSpec, after: i64) -> Vec<i64> {
        let mut grid: Vec<i64> = Vec::new();
        for &t in self.prices.end_ts() {
            let tau = ceil_to(t, spec.bar);
            if tau > after
                && grid.last() != Some(&tau)
                && spec.start.is_none_or(|s| tau >= s)
                && spec.end.is_none_or(|e| tau <= e)
            {
                grid.push(tau);
            }
        }
        grid
    }

    /// Bars per year implied by a decision grid: its bars over its span.
    pub fn bars_per_year(grid: &[i64], bar: i64) -> f64 {
        const YEAR: f64 = 365.25 * 86_400e9;
        let span = (grid[grid.len() - 1] - grid[0] + bar) as f64;
        grid.len() as f64 * YEAR / span
    }

    /// The slot of each of `frame_assets` in the system's asset order (`None` for an
    /// asset the system does not trade).
    pub fn map_assets(&self, frame_assets: &Arc<[String]>, out: &mut AssetMap) {
        // The same list as last time (a node's buffer, a store's slices) is known by
        // its handle: no name is compared.
        if out
            .key
            .as_ref()
            .is_some_and(|k| Arc::ptr_eq(k, frame_assets))
        {
            return;
        }
        out.key = Some(Arc::clone(frame_assets));
        if out.names.as_slice() == &frame_assets[..] {
            return;
        }
        out.names = frame_assets.to_vec();
        out.slots = frame_assets
            .iter()
            .map(|a| self.index.get(a).copied())
            .collect();
        out.identity = out.slots.len() == self.assets.len()
            && out.slots.iter().enumerate().all(|(i, &s)| s == Some(i));
    }
}

/// Each asset's slot in `assets`.
fn slots(assets: &[String]) -> HashMap<String, usize> {
    assets
        .iter()
        .enumerate()
        .map(|(i, a)| (a.clone(), i))
        .collect()
}

/// A frame's assets mapped onto the system's order, cached between bars (frames of
/// one node keep their asset list, so the map is built once).
#[derive(Clone, Debug, Default)]
pub struct AssetMap {
    names: Vec<String>,
    /// The handle of the list last mapped.
    key: Option<Arc<[String]>>,
    /// Slot per frame asset.
    pub slots: Vec<Option<usize>>,
    /// Whether the frame's assets are the system's, in its order (slot `i` is
    /// frame asset `i`): a row is then used as it is, with no scatter.
    identity: bool,
}

impl AssetMap {
    /// Whether frame asset `i` is system slot `i` for every `i`, and every slot has one.
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// Scatters `row` (one value per frame asset) into `out` (one per system asset).
    #[inline]
    pub fn scatter(&self, row: &[f64], out: &mut [f64]) {
        for (&slot, &v) in self.slots.iter().zip(row) {
            if let Some(s) = slot {
                out[s] = v;
            }
        }
    }
}

/// The smallest multiple of `bar` at or after `t`.
pub fn ceil_to(t: i64, bar: i64) -> i64 {
    let r = t.rem_euclid(bar);
    if r == 0 { t } else { t - r + bar }
}

/// The forecast and volatility columns of the forecast node's frame.
#[derive(Clone, Debug)]
pub struct ForecastColumns {
    /// Feature index of the prediction.
    pub prediction: usize,
    /// Feature index of the volatility.
    pub volatility: Option<usize>,
    /// Feature indices of the later horizons' forecasts.
    pub horizons: Vec<usize>,
}

impl ForecastColumns {
    /// Finds the columns `spec` names in `frame`, the output of `node`.
    ///
    /// # Errors
    /// [`SystemError::MissingColumn`] naming the node and the columns it has.
    pub fn find(frame: &View<'_>, node: &str, spec: &SystemSpec) -> Result<ForecastColumns> {
        let find = |c: &str, key: &str| {
            frame
                .feature_index(c)
                .map_err(|_| SystemError::MissingColumn {
                    what: format!("the forecast node `{node}`'s output"),
                    column: c.to_string(),
                    available: frame.features().join(", "),
                    hint: format!("set [system] {key} to one of them"),
                })
        };
        Ok(ForecastColumns {
            prediction: find(&spec.prediction, "prediction")?,
            volatility: match &spec.volatility {
                Some(v) => Some(find(v, "volatility")?),
                None => None,
            },
            horizons: spec
                .horizons
                .iter()
                .map(|h| find(h, "horizons"))
                .collect::<Result<_>>()?,
        })
    }

    /// Scatters row `r` of `frame` into the system's asset slots: the prediction
    /// into `forecast`, the later horizons' forecasts into `horizons` (one vector
    /// per horizon, sized here once), the volatility (when configured) into `vol`,
    /// which is then returned. Slots the frame does not cover are NaN.
    pub fn gather<'v>(
        &self,
        frame: &View<'_>,
        r: usize,
        map: &AssetMap,
        forecast: &mut [f64],
        horizons: &mut Vec<Vec<f64>>,
        vol: &'v mut [f64],
    ) -> Option<&'v [f64]> {
        let n = frame.n_assets();
        let row = |f: usize| &frame.values(f)[r * n..(r + 1) * n];
        forecast.fill(f64::NAN);
        map.scatter(row(self.prediction), forecast);
        horizons.resize_with(self.horizons.len(), Vec::new);
        for (buf, &f) in horizons.iter_mut().zip(&self.horizons) {
            buf.clear();
            buf.resize(forecast.len(), f64::NAN);
            map.scatter(row(f), buf);
        }
        self.volatility.map(|v| {
            vol.fill(f64::NAN);
            map.scatter(row(v), vol);
            &*vol
        })
    }
}

/// The smallest step between consecutive values of `ts` (none with fewer than two).
pub(crate) fn min_step(ts: &[i64]) -> Option<i64> {
    ts.windows(2).map(|w| w[1] - w[0]).min()
}
