//! `campusg ledger check`: reads the ledger, payment and escrow stores and the
//! processor's records (kept in the payment store), each rebuilt from its own
//! events, and holds them against each other ([`campusg_ledger::check`]).

use campusg_domain::escrow::Escrow;
use campusg_domain::ledger::{Account, OrderLedger};
use campusg_domain::payment::{AuthorizationOutcome, Payment, Payout};
use campusg_ledger::check::{check, Books, ProcessorRecord, Report};
use campusg_payment::sandbox::ProcessorCall;
use campusg_runtime::aggregate::load_all;

use crate::backends::StoreOpener;
use crate::settings::Backends;

/// Reads every source and compares them.
pub async fn run(backends: &Backends) -> anyhow::Result<Report> {
    let stores = StoreOpener::for_command(backends);
    let payment_store = stores.open("payment").await?;
    let escrow_store = stores.open("escrow").await?;
    let ledger_store = stores.open("ledger").await?;
    let processor = load_all::<ProcessorCall>(payment_store.as_ref())
        .await?
        .into_iter()
        .filter_map(|(key, call)| {
            Some(ProcessorRecord {
                key,
                approved: !matches!(call.outcome, Some(AuthorizationOutcome::Declined { .. })),
                operation: call.operation?,
                amount_cents: call.amount_cents,
            })
        })
        .collect();
    let books = Books {
        payments: load_all::<Payment>(payment_store.as_ref())
            .await?
            .into_values()
            .collect(),
        escrows: load_all::<Escrow>(escrow_store.as_ref()).await?.into_values().collect(),
        payouts: load_all::<Payout>(payment_store.as_ref())
            .await?
            .into_values()
            .collect(),
        ledgers: load_all::<OrderLedger>(ledger_store.as_ref())
            .await?
            .into_values()
            .collect(),
        processor,
    };
    Ok(check(&books))
}

/// The report as people read it: what was compared, where the money is, and
/// every difference.
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "compared {} order(s), {} ledger entries, {} processor records\n",
        report.orders, report.entries, report.processor_records
    );
    out.push_str("balances (debits minus credits):\n");
    for account in Account::ALL {
        let balance = report.totals.get(&account).copied().unwrap_or_default();
        out.push_str(&format!("  {:<16} {:>14}\n", account.as_str(), balance.to_string()));
    }
    if report.differences.is_empty() {
        out.push_str("no differences: the ledger, the aggregates and the processor agree\n");
    } else {
        out.push_str(&format!("{} difference(s):\n", report.differences.len()));
        for difference in &report.differences {
            out.push_str(&format!("  {difference}\n"));
        }
    }
    out
}
