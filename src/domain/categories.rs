//! The category set every new user starts with: two levels, editable afterwards.
use super::ledger::CategoryKind;

/// `(parent, children, kind)`.
pub const DEFAULT_CATEGORIES: &[(&str, &[&str], CategoryKind)] = &[
    (
        "Housing",
        &["Rent", "Mortgage", "Utilities", "Maintenance"],
        CategoryKind::Expense,
    ),
    (
        "Food",
        &["Groceries", "Restaurants", "Coffee"],
        CategoryKind::Expense,
    ),
    (
        "Transport",
        &["Fuel", "Public transport", "Taxi", "Parking"],
        CategoryKind::Expense,
    ),
    (
        "Shopping",
        &["Clothing", "Electronics", "Household"],
        CategoryKind::Expense,
    ),
    (
        "Health",
        &["Pharmacy", "Doctor", "Insurance"],
        CategoryKind::Expense,
    ),
    (
        "Entertainment",
        &["Streaming", "Events", "Hobbies"],
        CategoryKind::Expense,
    ),
    (
        "Bills",
        &["Phone", "Internet", "Subscriptions"],
        CategoryKind::Expense,
    ),
    ("Travel", &["Flights", "Hotels"], CategoryKind::Expense),
    ("Education", &[], CategoryKind::Expense),
    ("Personal care", &[], CategoryKind::Expense),
    ("Gifts & donations", &[], CategoryKind::Expense),
    ("Fees & charges", &[], CategoryKind::Expense),
    ("Taxes", &[], CategoryKind::Expense),
    ("Salary", &[], CategoryKind::Income),
    ("Business income", &[], CategoryKind::Income),
    ("Interest & dividends", &[], CategoryKind::Income),
    ("Refunds", &[], CategoryKind::Income),
    ("Other income", &[], CategoryKind::Income),
    ("Transfer", &[], CategoryKind::Transfer),
];
