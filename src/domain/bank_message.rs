//! Bank SMS / push-notification parser: turns a transaction alert such as
//! `"Rs.1,299.00 spent on HDFC Bank Card 5678 at AMAZON on 03-11-25"` into a [`ParsedMessage`],
//! or explains with a [`Refusal`] why the text is not a booked transaction (an OTP, a promotion,
//! a declined payment, or nothing recognisable).
//!
//! Approach: a pipeline of small, independent extractors over the (length-capped) text, each a
//! handful of precompiled `regex` patterns (linear time, no backtracking) plus plain string code:
//!
//! 1. **Classify** with keyword patterns, in order: OTP (a code being handed over), declined /
//!    failed, promotion (offers, "pre-approved", "get up to"). Only then look for a transaction.
//! 2. **Money**: every currency-tagged number (`Rs.`, `INR`, `₹`, `$`, `US$`, `€`, `EUR`, `£`,
//!    `Ksh`, `₦`, `R`, `R$`, `¥`/`円`, ISO codes before or after the number). Numbers are
//!    canonicalised whatever their grouping (`1,23,456.78`, `1.234,56`, `1 234,56`). Numbers that
//!    follow a balance/limit keyword are balances; those after a fee keyword are fees; the first
//!    remaining one is the transaction amount. With no currency anywhere, `debited by 150.0`-style
//!    keyword amounts are used and the currency is `None`.
//! 3. **Direction**: phrases that settle it (`has been credited`, `sent you`, `paid to`,
//!    `Kartenzahlung`, `has recibido`, ...) win by earliest position; otherwise the earliest weaker
//!    keyword (`debited`, `DR`, `CR`, `received`, ...); otherwise a debit (most alerts are spends).
//! 4. **Account digits, date, reference, merchant**: first match of patterns for masked numbers
//!    (`XX1234`, `**1234`, `012****345`, `card ending in 1234`), dates (ISO, numeric, month names
//!    in several languages; day-first unless the money is USD or the sender is a US bank; a
//!    year-less date takes the latest year not in the future of `today`), reference labels, and a
//!    merchant taken from bank-specific layouts first, then from the phrase after a preposition
//!    (`at`, `to`, `from`, `bei`, `chez`, `en`, `presso`, `aan`, ...) up to a stop word.
//!
//! Safety: input over [`MAX_MESSAGE_BYTES`] is refused; every slice is taken at positions that
//! regex matches or `char_indices` produced, so UTF-8 boundaries hold; nothing unwraps untrusted
//! data. Each extractor is a bounded number of linear regex scans, so a parse is linear in the
//! (capped) input.
use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate};
use regex::Regex;

/// Longer texts are not bank alerts (an SMS is at most a few hundred bytes); they are refused.
pub const MAX_MESSAGE_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Debit,
    Credit,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParsedMessage {
    /// Canonical unsigned decimal, '.' separator, no grouping, digits as shown ("150.0", "899").
    pub amount: String,
    /// ISO 4217, `None` if the text shows no currency.
    pub currency: Option<String>,
    pub direction: Direction,
    /// Digits only.
    pub last_digits: Option<String>,
    pub merchant: Option<String>,
    pub date: Option<NaiveDate>,
    pub balance: Option<String>,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    Otp,
    Promotion,
    Declined,
    NotATransaction,
}

impl Refusal {
    /// A human sentence, suitable for a 422 `detail`.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Otp => {
                "This is a one-time-password message, not a completed transaction; no money moved."
            }
            Refusal::Promotion => {
                "This looks like a promotion or offer, not a transaction on your account."
            }
            Refusal::Declined => {
                "This payment was declined or failed, so no transaction was recorded."
            }
            Refusal::NotATransaction => {
                "No transaction amount could be found in this message (or it is too long to be a bank alert)."
            }
        }
    }
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static pattern compiles")
}

macro_rules! lazy_re {
    ($name:ident, $pat:expr) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| re(&$pat));
    };
}

/// A number as banks print it: grouped (`1,23,456.78`, `1.234,56`, `1 234,56`) or plain.
const NUM: &str = r"\d{1,3}(?:[,.'’]\d{2,3}|[ \x{a0}]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?";
const PREFIX: &str = r"(?:(?-u:\b)(?i:US\$|USD|AU\$|A\$|AUD|CA\$|C\$|CAD|S\$|SGD|NZ\$|NZD|HK\$|HKD|INR|Rs\.?|EUR|GBP|KES|KShs?\.?|NGN|ZAR|AED|Dhs\.?|JPY|CHF|BRL)|(?-u:\b)R\$|(?-u:\b)R|\$|₹|€|£|₦|¥)";
const POSTFIX: &str =
    r"(?:€|円|¥|₹|(?i:EUR|USD|GBP|INR|KES|NGN|ZAR|AED|SGD|AUD|CAD|BRL|JPY|CHF|NZD|HKD)(?-u:\b))";

lazy_re!(
    MONEY,
    format!(
        r"(?P<pre>{PREFIX})\s*(?:[-:]\s*)?(?P<n1>{NUM})|(?P<n2>{NUM})\s?(?P<post>{POSTFIX})|(?P<pre3>(?-u:\b)N)(?P<n3>{NUM})"
    )
);
lazy_re!(NUM_RE, format!(r"{NUM}"));
lazy_re!(
    BARE_AMOUNT,
    format!(
        r"(?i)(?:debited by|credited by|debited for|credited for|debited with|credited with|(?-u:\b)amt(?-u:\b)\s*:?|(?-u:\b)amount(?: of)?\s*:?)\s*(?P<n>{NUM})"
    )
);
lazy_re!(
    BALANCE_KW,
    r"(?i)(?-u:\b)(?:bal(?:ance)?|avlbal|lmt|limit|kontostand|solde|saldo|available|avail|disponible|disponibile)(?-u:\b)"
);
lazy_re!(
    FEE_KW,
    r"(?i)(?-u:\b)(?:transaction cost|fees?|charges|commission|gst|frais|comisi[óo]n|geb[üu]hr)(?-u:\b)[\s,:]*(?:of\s*)?$"
);
lazy_re!(LIMIT_AFTER, r"(?i)^\s*(?:alert )?limit(?-u:\b)");

// ---- classification ----
lazy_re!(
    OTP_RE,
    r"(?i)(?-u:\b)\d{4,8}\s+is\s+(?:the\s+|your\s+)?(?:otp|one[- ]time|verification|security)|(?-u:\b)(?:otp|one[- ]time (?:pin|password|passcode|code)|code|passcode|c[óo]digo|pin|sicherheitscode|best[äa]tigungscode|freigabecode|verifizierungscode)(?-u:\b).{0,110}?(?:(?-u:\b)(?:is|est|es|lautet|ist)|\sé|:)\s*:?\s*\d{4,8}(?-u:\b)|(?-u:\b)use code\s+\d{4,8}(?-u:\b)|(?-u:\b)(?:ihre|die|eine)\s+(?:m|push|sms)?tan(?-u:\b)"
);
lazy_re!(
    DECLINED_RE,
    r"(?i)(?-u:\b)declined(?-u:\b)|(?-u:\b)failed(?-u:\b)|(?-u:\b)unsuccessful(?-u:\b)|could not be (?:processed|completed)|was not (?:approved|successful)|(?-u:\b)rejected(?-u:\b)|abgelehnt|(?-u:\b)refus(?:[ée]e?|e)|rechazad[ao]|denegad[ao]|(?-u:\b)negad[ao](?-u:\b)|recusad[ao]|rifiutat[ao]|geweigerd|insufficient (?:funds|balance)|solde insuffisant|saldo insuficiente|nicht ausreichend"
);
lazy_re!(
    PROMO_RE,
    r"(?i)pre-?approved|(?-u:\b)apply (?:now|at|here|today)(?-u:\b)|(?-u:\b)get up to(?-u:\b)|(?-u:\b)up to (?:rs\.?|inr|₹|\$|£|€|ngn|₦|ksh|kes)\s*\d|(?-u:\b)loan of up to(?-u:\b)|(?-u:\b)borrow up to(?-u:\b)|(?-u:\b)(?:can|will) be credited(?-u:\b)|(?-u:\b)get (?:funds|\S+) credited(?-u:\b)|(?-u:\b)offer valid(?-u:\b)|(?-u:\b)t&c(?-u:\b)|(?-u:\b)terms apply(?-u:\b)|(?-u:\b)consigue(?-u:\b)|(?-u:\b)de regalo(?-u:\b)|(?-u:\b)opt in(?-u:\b)|(?-u:\b)limit is ready(?-u:\b)|(?-u:\b)cashback (?:up to|of [^.]{0,25}will)|(?-u:\b)earn an? \S+ bonus(?-u:\b)|(?-u:\b)no collateral(?-u:\b)|(?-u:\b)download \w+ now(?-u:\b)|(?-u:\b)(?:fino a|hasta|at[ée]|bis zu|jusqu'[àa])\s+(?:€|eur|rs\.?|r\$|\d)|(?-u:\b)qualify for a loan(?-u:\b)|(?-u:\b)(?:earn|get) an? \S+ (?:cash )?bonus(?-u:\b)|(?-u:\b)offer ends(?-u:\b)"
);

// ---- direction ----
lazy_re!(
    STRONG_CREDIT,
    r"(?i)(?-u:\b)(?:has been received|was received|is credited|are credited|been credited|credited (?:with|to your|in your|into your)|received into|paid into|sent you|paid you|you have received|you've received|you received|money received|deposited (?:in|into|to)|direct deposit|refunded|refund of|reversed|zahlungseingang|gutschrift|virement re[çc]u|avez re[çc]u|re[çc]u un virement|paid to (?:your |cheq |savings |cheque )?(?:a/c|acc|account)|has recibido|abono|voc[eê] recebeu|recebeu|ontvangen|bijgeschreven|bonifico in entrata|accredito|recebid[oa])(?-u:\b)"
);
lazy_re!(
    STRONG_DEBIT,
    r"(?i)(?-u:\b)(?:is debited|been debited|debited (?:from|for|by|with|to)|you spent|spent|you paid|paid to|paid at|paid from|sent to|withdrawn|withdraw(?:al)?|purchase|kartenzahlung|abbuchung|lastschrift|paiement|retrait|pr[ée]l[èe]vement|compra|cargo|pagamento|prelievo|addebito|betaling|afgeschreven|used for|was used|you bought|bought|charged)(?-u:\b)|ご利用"
);
lazy_re!(
    WEAK_DEBIT,
    r"(?i)(?-u:\b)(?:debited|debit|dr|sent|paid|payment|pur|transaction|transferred|trf to|reserved|pos|atm|zahlung|pago|wdl|enviado|enviada)(?-u:\b)"
);
lazy_re!(
    WEAK_CREDIT,
    r"(?i)(?-u:\b)(?:credited|credit|cr|received|deposit|deposited|dep|salary|transfer from|trf from|ingreso|eingang)(?-u:\b)"
);
lazy_re!(CARD_OR_LIMIT_AFTER, r"(?i)^\s*(?:card|limit|lmt)(?-u:\b)");

// ---- account digits ----
lazy_re!(
    ACCOUNT_RE,
    r"(?i)(?:(?-u:\b)(?:a/c|acct|account|acc|ac|card|konto|girokonto|compte|carte|cuenta|tarjeta|carta|conto|pas|rekening|cart[ãa]o|final|ending(?:\s+in)?|checking|savings|chequing)(?-u:\b)\.?\s*(?:no\.?|number|n[°º])?\s*[:#-]?\s*\(?\s*(?:(?:[xX*•.]+|N{2,}|\d{1,6}[xX*]+(?:\d+[xX*]+)?)\s?(?P<a>\d{2,6})|(?P<f>\d{4,5}))(?-u:\b))|(?:^|[^\w.])(?:[xX*•]{2,}|\.{2,3})\s?(?P<b>\d{2,6})(?-u:\b)|[^\w.](?:\.{2,3})(?P<e>\d{3,6})(?-u:\b)|(?-u:\b)\d{1,6}[xX*]{2,}(?:\d+[xX*]{2,})?(?P<c>\d{2,6})(?-u:\b)|(?-u:\b)(?:CHEQ|SAVS|CRED|CHQ)(?P<d>\d{4})(?-u:\b)|(?:末尾|口座番号)\s*(?P<g>\d{3,6})"
);

// ---- dates ----
lazy_re!(
    DATE_NUM,
    r"(?-u:\b)(?P<y>\d{4})[-/.:](?P<m>\d{1,2})[-/.:](?P<d>\d{1,2})(?-u:\b)|(?-u:\b)(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.](?P<c>\d{4}|\d{2})(?-u:\b)|(?i:(?-u:\b)on|(?-u:\b)le|(?-u:\b)el|(?-u:\b)em|(?-u:\b)il|(?-u:\b)am|(?-u:\b)dia|(?-u:\b)date|(?-u:\b)dt|,)\s*:?\s*(?P<p>\d{1,2})[/-](?P<q>\d{1,2})(?-u:\b)|(?P<cy>\d{4})年(?P<cm>\d{1,2})月(?P<cd>\d{1,2})日"
);
lazy_re!(
    DATE_DAY_MONTH,
    r"(?i)(?-u:\b)(?P<d>\d{1,2})(?:st|nd|rd|th)?[\s\-./]*(?P<mon>[a-zäéû]{3,9})\.?(?:[\s\-,./']*(?P<y>\d{4}|\d{2})(?-u:\b)(?P<colon>:)?)?"
);
lazy_re!(
    DATE_MONTH_DAY,
    r"(?i)(?-u:\b)(?P<mon>[a-z]{3,9})\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?(?-u:\b)(?:,?\s+(?P<y>\d{4})(?-u:\b))?"
);

// ---- references ----
lazy_re!(MPESA_CODE, r"^\s*(?P<r>[A-Z0-9]{10})\s+[Cc]onfirmed");
lazy_re!(
    NEFT_REF,
    r"(?i)NEFT\s*Cr-[^\n]*-(?P<r>[A-Z]{4}[A-Z0-9]{8,26})(?-u:\b)"
);
lazy_re!(
    NEFT_DASH,
    r"(?i)(?-u:\b)(?:NEFT|IMPS|RTGS)-(?P<r>[A-Z]{4}[A-Z0-9]{8,26})-(?P<m>[^.\n]+)"
);
lazy_re!(
    UPI_SLASH,
    r"(?i)(?-u:\b)(?:UPI|NEFT|IMPS|RTGS)/(?:P2[AMP]/)?(?P<r>\d[A-Z0-9]{5,21}|[A-Z]{4,5}\d[A-Z0-9]{4,20})/(?P<m>[^/\n]+)"
);
lazy_re!(
    REF_RE,
    r"(?i)(?-u:\b)(?:(?:(?:UPI|IMPS|NEFT|RTGS|Mob Bk|Bank)\s*)?(?:Ref(?:erence)?|transaction|txn|trans)\.?\s*(?:No|ID|number|#)?|Refno|UPI|IMPS|RRN)\s*[.:#-]*\s*(?P<r>[A-Z0-9]{4,30})(?-u:\b)"
);
lazy_re!(
    REF_TEXT,
    r"(?-u:\b)Ref:\s*(?P<r>[A-Z][A-Z ]{1,28}[A-Z])(?-u:\b)"
);

// ---- merchant ----
lazy_re!(VPA_RE, r"(?i)(?-u:\b)VPA\s+(?P<m>[\w.\-]+@[\w.\-]+)");
lazy_re!(NEFT_NAME, r"(?i)NEFT\s*Cr-[A-Z0-9]+-(?P<m>[^\n-]+)-");
lazy_re!(
    DESC_RE,
    r"(?i)(?-u:\b)(?:desc|des|description|narration|info|remarks)\s*:\s*-?\s*(?P<m>[^\n]+)"
);
lazy_re!(DESC_END, r"(?i)\.\s|\s+(?:avail|avl|bal)(?-u:\b)|\.$");
lazy_re!(
    AXIS_LINE,
    r"\n\d{2}-\d{2}-\d{2},? \d{2}:\d{2}(?::\d{2})?(?: IST)?\n(?P<m>[^\n]+)"
);
lazy_re!(ATM_WDL, r"(?i)ATM-WDL/(?P<m>[^/\n]+)");
lazy_re!(
    MPESA_WITHDRAW,
    r"(?i)withdraw\s+\S+\s+from\s+\d+\s+-\s+(?P<m>.+?)\s+New M-PESA"
);
lazy_re!(
    DATE_THEN_ON,
    r"(?i)(?-u:\b)on\s+\d{1,2}[-/ ]?[a-z]{3}[-/ ]?\d{2,4}\s+on\s+(?P<m>[^.\n]+)"
);
lazy_re!(
    JP_MERCHANT,
    r"ご利用先[：:]\s*(?P<m>[^\n：:]+?)\s*(?:ご利用|$)"
);
lazy_re!(
    ABSA_RE,
    r"(?i)(?-u:\b)(?:pur|dep|pmt|trf|wdl|pos|ach)\w*,\s*\d{1,2}/\d{1,2}/\d{2,4}\s+(?P<m>[^,\n]+),"
);
lazy_re!(TIME_COMMA_TAIL, r"\d{1,2}:\d{2},\s*(?P<m>[^,\n]+?)\.?\s*$");
lazy_re!(
    PAIEMENT_CB,
    r"(?i)paiement cb\s+[\d.,\s]+\s*(?:€|eur)\s+(?P<m>.+?)(?:\s+le\s|$)"
);
lazy_re!(SEMI_CREDITED, r";\s*(?P<m>[^;.\n]+?)\s+credited(?-u:\b)");
lazy_re!(
    NAME_BEFORE,
    r"^(?:[\w .\-]+:\s*)?(?P<m>[A-Z][\w.' \-]{1,50}?)\s+(?:paid you|sent you)(?-u:\b)"
);
lazy_re!(
    PREP_RE,
    r"(?i)(?:^|[\s;:(])(?:at|@|to|from|with|bei|von|an|chez|de la part de|de|en|presso|da|aan|van|naar|bij|em|para|aus|au)\s+"
);
lazy_re!(FALLBACK_PREP, r"(?i)(?:^|\s)(?:for|towards|por)\s+");
lazy_re!(
    MERCHANT_END,
    r"(?i)\s+(?:on|via|with|using|from|for|in|into|le|am|el|il|op|em|en|was|has|is|were|ref|upi|met|con|avec|mit|auf|sur|sul|by|refno|avl|avail|bal|balance|not|wurde|ist|at|to|and|if|exceed(?:s|ed)?|new m-pesa|successfully|des|della|del|no|von|vom|aus|bezahlt|gezahlt|[üu]berwiesen|dia|para|em)(?-u:\b)|\.\s|\.$|[;(\n]|$"
);
lazy_re!(
    MERCHANT_REJECT,
    r"(?i)^(?:your|you|my|acc|su|tu|votre|vos|ihr|ihre|ihrem|ihren|je|uw|seu|sua|il|la|le|a|an|the|this|us|our|account|acct|a/c|card|konto|cuenta|rekening|conto|compte|carte|checking|savings)(?-u:\b)|[xX*]{2,}\d|a/c|account ending|card ending|(?-u:\b)(?:ac|acc|acct|account|card)\s+(?:no\.?\s*)?(?:[xX*]+|\.{2,})\d|^(?:ref|sms|block|call|dispute|report)(?-u:\b)|^atm$|^\d+$|^\d{1,2}:\d{2}|^\d{1,2}[-/.]\d{1,2}"
);
lazy_re!(TRAILING_PHONE, r"\s+\+?\d{9,13}$");
lazy_re!(ACH_PREFIX, r"(?i)^ACH\s*[DC]-\s*(?:TP ACH\s*)?");
lazy_re!(TRAILING_DASH_DIGITS, r"-\d{6,}$");
lazy_re!(
    MONEY_AT_START,
    format!(r"^(?:{PREFIX})\s*[-:.]?\s*\d|^(?:{NUM})\s?(?:{POSTFIX})")
);

// ---- currency cues for a bare "$" and for date order ----
lazy_re!(
    CAD_CUE,
    r"(?i)(?-u:\b)(?:CAD|interac|RBC|CIBC|scotiabank|scotia|BMO|desjardins|tangerine)(?-u:\b)|(?-u:\b)TD(?-u:\b)"
);
lazy_re!(
    AUD_CUE,
    r"(?i)(?-u:\b)(?:AUD|commbank|westpac|ANZ|NAB|bendigo|macquarie|ubank|suncorp)(?-u:\b)"
);
lazy_re!(
    SGD_CUE,
    r"(?i)(?-u:\b)(?:SGD|DBS|OCBC|UOB|POSB|paynow)(?-u:\b)"
);
lazy_re!(NZD_CUE, r"(?i)(?-u:\b)(?:NZD|kiwibank|ASB|BNZ)(?-u:\b)");
lazy_re!(HKD_CUE, r"(?i)(?-u:\b)(?:HKD|hang seng)(?-u:\b)");
lazy_re!(
    US_CUE,
    r"(?i)(?-u:\b)(?:chase|bofa|bank of america|wells ?fargo|capital ?one|amex|american ?express|citi|discover|venmo|zelle|us ?bank|u\.s\. bank|usaa|pnc|truist|ally)(?-u:\b)"
);

/// Parse one bank message. `today` is the date it was received.
pub fn parse(text: &str, sender: Option<&str>, today: NaiveDate) -> Result<ParsedMessage, Refusal> {
    if text.len() > MAX_MESSAGE_BYTES || text.trim().is_empty() {
        return Err(Refusal::NotATransaction);
    }
    let sender = sender.filter(|s| s.len() <= 256).unwrap_or("");
    let t = normalize(text);
    let t = t.as_str();

    if OTP_RE.is_match(t) {
        return Err(Refusal::Otp);
    }
    if DECLINED_RE.is_match(t) {
        return Err(Refusal::Declined);
    }
    if PROMO_RE.is_match(t) {
        return Err(Refusal::Promotion);
    }

    let balances = balance_numbers(t);
    let fees = fee_numbers(t);
    let mut found: Option<(String, Option<String>)> = None;
    for c in money_candidates(t) {
        if balances.iter().any(|b| b.0 == c.num_start) || fees.contains(&c.num_start) {
            continue;
        }
        if LIMIT_AFTER.is_match(&t[c.end..]) {
            continue;
        }
        found = Some((c.amount, Some(resolve_currency(&c.token, t, sender))));
        break;
    }
    if found.is_none() {
        found = BARE_AMOUNT
            .captures(t)
            .and_then(|cap| cap.name("n"))
            .and_then(|n| canonical_number(n.as_str()))
            .map(|a| (a, None));
    }
    let (amount, currency) = found.ok_or(Refusal::NotATransaction)?;

    let month_first =
        currency.as_deref() == Some("USD") || (currency.is_none() && US_CUE.is_match(sender));
    let balance = balances.into_iter().next().map(|b| b.1);

    Ok(ParsedMessage {
        amount,
        currency,
        direction: direction(t),
        last_digits: last_digits(t),
        merchant: merchant(t),
        date: date(t, today, month_first),
        balance,
        reference: reference(t),
    })
}

/// Unicode spaces and tabs become plain spaces, `\r\n` becomes `\n`; length is preserved or
/// reduced, never grown past the cap.
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\r' => {}
            '\t' | '\u{a0}' | '\u{2007}' | '\u{2009}' | '\u{202f}' | '\u{3000}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

struct Candidate {
    num_start: usize,
    end: usize,
    amount: String,
    token: String,
}

fn money_candidates(t: &str) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos <= t.len() {
        let Some(cap) = MONEY.captures_at(t, pos) else {
            break;
        };
        let Some(whole) = cap.get(0) else { break };
        let (num, token) = match (
            cap.name("n1"),
            cap.name("pre"),
            cap.name("n2"),
            cap.name("post"),
        ) {
            (Some(n), Some(p), _, _) => (n, p),
            (None, None, None, None) => match (cap.name("n3"), cap.name("pre3")) {
                (Some(n), Some(p)) => (n, p),
                _ => break,
            },
            (_, _, Some(n), Some(p)) => {
                // "XX1234 INR 500": digits glued to letters or a mask are not an amount; retry
                // from the currency token so it can serve as a prefix.
                let before = t[..n.start()].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || matches!(c, '*' | '/' | '#')) {
                    pos = p.start();
                    continue;
                }
                (n, p)
            }
            _ => break,
        };
        let mut num_str = num.as_str();
        // "Rs 500 123456": a space group followed by more digits is not a grouping.
        if num_str.contains(' ') && t[num.end()..].starts_with(|c: char| c.is_ascii_digit()) {
            num_str = num_str.split(' ').next().unwrap_or(num_str);
        }
        if let Some(amount) = canonical_number(num_str) {
            out.push(Candidate {
                num_start: num.start(),
                end: whole.end(),
                amount,
                token: token.as_str().to_string(),
            });
        }
        pos = whole.end().max(pos + 1);
        while pos < t.len() && !t.is_char_boundary(pos) {
            pos += 1;
        }
        if out.len() > 64 {
            break;
        }
    }
    out
}

/// `(number start, canonical value)` for each number shortly after a balance/limit keyword.
fn balance_numbers(t: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for kw in BALANCE_KW.find_iter(t).take(32) {
        let window = prefix_chars(&t[kw.end()..], 80);
        let window = window.split('\n').next().unwrap_or("");
        let near = prefix_chars(window, 40).len();
        let hit = MONEY
            .captures(window)
            .filter(|c| c.get(0).is_some_and(|m| m.start() < near))
            .and_then(|c| c.name("n1").or(c.name("n2")).or(c.name("n3")))
            .or_else(|| {
                let short = prefix_chars(window, 15);
                NUM_RE.find(short)
            });
        if let Some(n) = hit {
            let start = kw.end() + n.start();
            if out.iter().any(|b| b.0 == start) {
                continue;
            }
            if let Some(v) = canonical_number(n.as_str()) {
                out.push((start, v));
            }
        }
    }
    out
}

fn fee_numbers(t: &str) -> Vec<usize> {
    money_like_starts(t)
        .into_iter()
        .filter(|&(start, num_start)| {
            let from = floor_boundary(t, start.saturating_sub(30));
            FEE_KW.is_match(&t[from..start]) && num_start >= start
        })
        .map(|(_, n)| n)
        .collect()
}

/// (match start, number start) of each money match.
fn money_like_starts(t: &str) -> Vec<(usize, usize)> {
    MONEY
        .captures_iter(t)
        .take(64)
        .filter_map(|c| {
            let whole = c.get(0)?;
            let n = c.name("n1").or(c.name("n2")).or(c.name("n3"))?;
            Some((whole.start(), n.start()))
        })
        .collect()
}

fn floor_boundary(t: &str, mut i: usize) -> usize {
    while i > 0 && !t.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn prefix_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Canonicalise a printed number: grouping removed, decimal separator '.', digits kept as shown.
pub fn canonical_number(raw: &str) -> Option<String> {
    let s: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\'' | '’'))
        .collect();
    if s.is_empty() || !s.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let last_sep = s.rfind(['.', ',']);
    let (int_part, frac_part): (String, String) = match last_sep {
        None => (s.clone(), String::new()),
        Some(i) => {
            let sep = s[i..].chars().next()?;
            let after = &s[i + 1..];
            let other = if sep == '.' { ',' } else { '.' };
            let mixed = s.contains(other);
            let count = s.matches(sep).count();
            let decimal = if mixed {
                true
            } else if count > 1 {
                after.len() != 3
            } else {
                after.len() != 3 || s[..i].chars().all(|c| c == '0')
            };
            if decimal {
                (
                    s[..i].chars().filter(|c| c.is_ascii_digit()).collect(),
                    after.to_string(),
                )
            } else {
                (
                    s.chars().filter(|c| c.is_ascii_digit()).collect(),
                    String::new(),
                )
            }
        }
    };
    if int_part.is_empty() || int_part.len() > 15 || !frac_part.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    if frac_part.is_empty() {
        Some(int_part)
    } else {
        Some(format!("{int_part}.{frac_part}"))
    }
}

fn resolve_currency(token: &str, t: &str, sender: &str) -> String {
    let up = token.trim().trim_end_matches('.').to_uppercase();
    let code = match up.as_str() {
        "RS" | "INR" | "₹" => "INR",
        "US$" | "USD" => "USD",
        "A$" | "AU$" | "AUD" => "AUD",
        "C$" | "CA$" | "CAD" => "CAD",
        "S$" | "SGD" => "SGD",
        "NZ$" | "NZD" => "NZD",
        "HK$" | "HKD" => "HKD",
        "R$" | "BRL" => "BRL",
        "R" | "ZAR" => "ZAR",
        "€" | "EUR" => "EUR",
        "£" | "GBP" => "GBP",
        "KES" | "KSH" | "KSHS" => "KES",
        "NGN" | "₦" | "N" => "NGN",
        "AED" | "DHS" => "AED",
        "JPY" | "¥" | "円" => "JPY",
        "CHF" => "CHF",
        "$" => {
            let cue = |r: &Regex| r.is_match(t) || r.is_match(sender);
            if cue(&CAD_CUE) {
                "CAD"
            } else if cue(&AUD_CUE) {
                "AUD"
            } else if cue(&SGD_CUE) {
                "SGD"
            } else if cue(&NZD_CUE) {
                "NZD"
            } else if cue(&HKD_CUE) {
                "HKD"
            } else {
                "USD"
            }
        }
        other => return other.to_string(),
    };
    code.to_string()
}

fn direction(t: &str) -> Direction {
    // Earliest wins; at the same position the longer phrase ("paid to cheq a/c" over "paid to").
    let key = |m: regex::Match| (m.start(), usize::MAX - m.len());
    let strong_c = STRONG_CREDIT.find(t).map(key);
    let strong_d = STRONG_DEBIT.find(t).map(key);
    match (strong_c, strong_d) {
        (Some(c), Some(d)) => {
            return if c < d {
                Direction::Credit
            } else {
                Direction::Debit
            }
        }
        (Some(_), None) => return Direction::Credit,
        (None, Some(_)) => return Direction::Debit,
        (None, None) => {}
    }
    let weak_c = WEAK_CREDIT
        .find_iter(t)
        .find(|m| !CARD_OR_LIMIT_AFTER.is_match(&t[m.end()..]))
        .map(|m| m.start());
    let weak_d = WEAK_DEBIT.find(t).map(|m| m.start());
    match (weak_c, weak_d) {
        (Some(c), Some(d)) if c < d => Direction::Credit,
        (Some(_), None) => Direction::Credit,
        _ => Direction::Debit,
    }
}

fn last_digits(t: &str) -> Option<String> {
    let cap = ACCOUNT_RE.captures(t)?;
    ["a", "b", "c", "d", "e", "f", "g"]
        .iter()
        .find_map(|g| cap.name(g))
        .map(|m| m.as_str().to_string())
}

fn month_from_word(word: &str) -> Option<u32> {
    let w = word.to_lowercase();
    const NAMES: &[(&str, u32)] = &[
        ("january", 1),
        ("januar", 1),
        ("janvier", 1),
        ("janv", 1),
        ("enero", 1),
        ("ene", 1),
        ("gennaio", 1),
        ("gen", 1),
        ("januari", 1),
        ("jan", 1),
        ("janeiro", 1),
        ("february", 2),
        ("februar", 2),
        ("février", 2),
        ("fevrier", 2),
        ("févr", 2),
        ("fevr", 2),
        ("feb", 2),
        ("fév", 2),
        ("fev", 2),
        ("febrero", 2),
        ("febbraio", 2),
        ("februari", 2),
        ("fevereiro", 2),
        ("march", 3),
        ("märz", 3),
        ("mär", 3),
        ("mars", 3),
        ("marzo", 3),
        ("maart", 3),
        ("mrt", 3),
        ("mar", 3),
        ("março", 3),
        ("marco", 3),
        ("april", 4),
        ("avril", 4),
        ("avr", 4),
        ("abril", 4),
        ("abr", 4),
        ("aprile", 4),
        ("apr", 4),
        ("may", 5),
        ("mai", 5),
        ("mayo", 5),
        ("maggio", 5),
        ("mag", 5),
        ("mei", 5),
        ("maio", 5),
        ("june", 6),
        ("juni", 6),
        ("juin", 6),
        ("junio", 6),
        ("giugno", 6),
        ("giu", 6),
        ("jun", 6),
        ("junho", 6),
        ("july", 7),
        ("juli", 7),
        ("juillet", 7),
        ("juil", 7),
        ("julio", 7),
        ("luglio", 7),
        ("lug", 7),
        ("jul", 7),
        ("julho", 7),
        ("august", 8),
        ("août", 8),
        ("aout", 8),
        ("agosto", 8),
        ("ago", 8),
        ("augustus", 8),
        ("aug", 8),
        ("september", 9),
        ("septembre", 9),
        ("septiembre", 9),
        ("settembre", 9),
        ("sept", 9),
        ("sep", 9),
        ("set", 9),
        ("setembro", 9),
        ("october", 10),
        ("oktober", 10),
        ("octobre", 10),
        ("octubre", 10),
        ("ottobre", 10),
        ("oct", 10),
        ("okt", 10),
        ("ott", 10),
        ("outubro", 10),
        ("november", 11),
        ("novembre", 11),
        ("noviembre", 11),
        ("nov", 11),
        ("novembro", 11),
        ("december", 12),
        ("dezember", 12),
        ("décembre", 12),
        ("decembre", 12),
        ("diciembre", 12),
        ("dicembre", 12),
        ("dec", 12),
        ("déc", 12),
        ("dez", 12),
        ("dic", 12),
        ("dezembro", 12),
    ];
    NAMES.iter().find(|(n, _)| *n == w).map(|&(_, m)| m)
}

fn two_digit_year(y: i32) -> i32 {
    if y < 100 {
        2000 + y
    } else {
        y
    }
}

/// Year-less: the latest year whose date is not after `today` (+1 day for time zones).
fn infer_year(month: u32, day: u32, today: NaiveDate) -> Option<NaiveDate> {
    let d = NaiveDate::from_ymd_opt(today.year(), month, day)?;
    if d > today.succ_opt().unwrap_or(today) {
        NaiveDate::from_ymd_opt(today.year() - 1, month, day)
    } else {
        Some(d)
    }
}

fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    if !(1990..=2100).contains(&y) {
        return None;
    }
    NaiveDate::from_ymd_opt(y, m, d)
}

/// Resolve an ambiguous `a/b[/y]` date. `month_first` is the preference; the other order is used
/// when the preferred one is invalid or lies in the future while the other does not.
fn ambiguous(
    a: u32,
    b: u32,
    y: Option<i32>,
    today: NaiveDate,
    month_first: bool,
) -> Option<NaiveDate> {
    let build = |m: u32, d: u32| match y {
        Some(y) => ymd(y, m, d),
        None => infer_year(m, d, today),
    };
    let (pref, other) = if month_first {
        (build(a, b), build(b, a))
    } else {
        (build(b, a), build(a, b))
    };
    let future = |d: &NaiveDate| *d > today.succ_opt().unwrap_or(today);
    match (pref, other) {
        (Some(p), Some(o)) if future(&p) && !future(&o) => Some(o),
        (Some(p), _) => Some(p),
        (None, o) => o,
    }
}

fn date(t: &str, today: NaiveDate, month_first: bool) -> Option<NaiveDate> {
    let num = |s: &str| s.parse::<u32>().ok();
    let mut best: Option<(usize, NaiveDate)> = None;
    let mut consider = |pos: usize, d: Option<NaiveDate>| {
        if let Some(d) = d {
            if best.is_none_or(|(p, _)| pos < p) {
                best = Some((pos, d));
            }
        }
    };
    for c in DATE_NUM.captures_iter(t).take(32) {
        let Some(whole) = c.get(0) else { continue };
        let d = if let (Some(y), Some(m), Some(d)) = (c.name("y"), c.name("m"), c.name("d")) {
            y.as_str()
                .parse::<i32>()
                .ok()
                .and_then(|y| ymd(y, num(m.as_str())?, num(d.as_str())?))
        } else if let (Some(a), Some(b), Some(y)) = (c.name("a"), c.name("b"), c.name("c")) {
            let y = y.as_str().parse::<i32>().ok().map(two_digit_year);
            match (num(a.as_str()), num(b.as_str())) {
                (Some(a), Some(b)) => ambiguous(a, b, y, today, month_first),
                _ => None,
            }
        } else if let (Some(y), Some(m), Some(d)) = (c.name("cy"), c.name("cm"), c.name("cd")) {
            y.as_str()
                .parse::<i32>()
                .ok()
                .and_then(|y| ymd(y, num(m.as_str())?, num(d.as_str())?))
        } else if let (Some(p), Some(q)) = (c.name("p"), c.name("q")) {
            match (num(p.as_str()), num(q.as_str())) {
                (Some(a), Some(b)) => ambiguous(a, b, None, today, month_first),
                _ => None,
            }
        } else {
            None
        };
        if d.is_some() {
            consider(whole.start(), d);
            break;
        }
    }
    for c in DATE_DAY_MONTH.captures_iter(t).take(32) {
        let (Some(whole), Some(d), Some(mon)) = (c.get(0), c.name("d"), c.name("mon")) else {
            continue;
        };
        let Some(m) = month_from_word(mon.as_str()) else {
            continue;
        };
        let Some(day) = num(d.as_str()) else { continue };
        let year = match (c.name("y"), c.name("colon")) {
            (Some(y), None) => y.as_str().parse::<i32>().ok().map(two_digit_year),
            _ => None,
        };
        let d = match year {
            Some(y) => ymd(y, m, day),
            None => infer_year(m, day, today),
        };
        if d.is_some() {
            consider(whole.start(), d);
            break;
        }
    }
    for c in DATE_MONTH_DAY.captures_iter(t).take(32) {
        let (Some(whole), Some(d), Some(mon)) = (c.get(0), c.name("d"), c.name("mon")) else {
            continue;
        };
        let Some(m) = month_from_word(mon.as_str()) else {
            continue;
        };
        let Some(day) = num(d.as_str()) else { continue };
        let d = match c.name("y").and_then(|y| y.as_str().parse::<i32>().ok()) {
            Some(y) => ymd(y, m, day),
            None => infer_year(m, day, today),
        };
        if d.is_some() {
            consider(whole.start(), d);
            break;
        }
    }
    best.map(|(_, d)| d)
}

fn reference(t: &str) -> Option<String> {
    let grab = |r: &Regex| {
        r.captures(t)
            .and_then(|c| c.name("r"))
            .map(|m| m.as_str().to_string())
    };
    if let Some(r) = grab(&MPESA_CODE)
        .or_else(|| grab(&NEFT_REF))
        .or_else(|| grab(&NEFT_DASH))
        .or_else(|| grab(&UPI_SLASH))
    {
        return Some(r);
    }
    for c in REF_RE.captures_iter(t).take(32) {
        if let Some(r) = c.name("r") {
            let r = r.as_str();
            if r.chars().any(|c| c.is_ascii_digit()) {
                return Some(r.to_string());
            }
        }
    }
    grab(&REF_TEXT)
}

fn clean_merchant(raw: &str) -> Option<String> {
    clean_merchant_with(raw, false)
}

fn clean_merchant_with(raw: &str, strip_phone: bool) -> Option<String> {
    let mut s = raw
        .trim()
        .trim_end_matches(['.', ',', ';', ':', '-', ' '])
        .trim()
        .to_string();
    if strip_phone {
        if let Some(m) = TRAILING_PHONE.find(&s) {
            s.truncate(m.start());
        }
    }
    if s.chars().count() > 60 {
        s = prefix_chars(&s, 60).trim_end().to_string();
    }
    if s.is_empty() || MERCHANT_REJECT.is_match(&s) || MONEY_AT_START.is_match(&s) {
        return None;
    }
    let first = s.chars().next()?;
    if first.is_lowercase() && !s.contains(['@', '.']) {
        // "distributeur CIC LYON", "cajero BBVA SOL": drop leading lower-case words.
        let rest: Vec<&str> = s
            .split_whitespace()
            .skip_while(|w| w.starts_with(|c: char| c.is_lowercase()))
            .collect();
        if rest.is_empty() || rest.len() == s.split_whitespace().count() {
            return None;
        }
        let rest = rest.join(" ");
        if MERCHANT_REJECT.is_match(&rest) || rest.starts_with(|c: char| c.is_lowercase()) {
            return None;
        }
        return Some(rest);
    }
    Some(s)
}

/// Where a merchant phrase ends; a '.' after an initial ("M. DUPONT", "P. Jansen") does not end it.
fn merchant_end(rest: &str) -> usize {
    let mut from = 0;
    while let Some(m) = MERCHANT_END.find_at(rest, from) {
        from = m.start() + 1;
        while from < rest.len() && !rest.is_char_boundary(from) {
            from += 1;
        }
        if m.as_str().starts_with('.') && from < rest.len() {
            let word = rest[..m.start()]
                .split_whitespace()
                .next_back()
                .unwrap_or("");
            let initial = word.chars().count() == 1 && word.chars().all(|c| c.is_uppercase());
            if initial
                || matches!(
                    word,
                    "Mr" | "Mrs" | "Ms" | "Dr" | "St" | "Mme" | "Sr" | "Sra" | "Jr"
                )
            {
                continue;
            }
        }
        return m.start();
    }
    rest.len()
}

/// Cut at ", " unless both sides look like an upper-case descriptor ("CARREFOUR MOE, DUBAI").
fn cut_comma(s: &str) -> &str {
    let Some(i) = s.find(',') else { return s };
    let (head, tail) = (&s[..i], s[i + 1..].trim_start());
    let upper = |x: &str| {
        let letters: Vec<char> = x.chars().filter(|c| c.is_alphabetic()).collect();
        letters.len() >= 2 && letters.iter().all(|c| c.is_uppercase())
    };
    let first_word = tail.split_whitespace().next().unwrap_or("");
    if upper(head) && upper(first_word) && !matches!(first_word, "AVL" | "AVAIL" | "BAL" | "REF") {
        s
    } else {
        head
    }
}

fn merchant(t: &str) -> Option<String> {
    let grab = |r: &Regex| r.captures(t).and_then(|c| c.name("m")).map(|m| m.as_str());
    if let Some(m) = grab(&VPA_RE) {
        return clean_merchant(m);
    }
    if let Some(m) = grab(&UPI_SLASH) {
        let m = &m[..merchant_end(m)];
        if let Some(c) = clean_merchant(m) {
            return Some(c);
        }
    }
    if let Some(m) = grab(&NEFT_DASH) {
        if let Some(c) = clean_merchant(m) {
            return Some(c);
        }
    }
    if let Some(m) = grab(&NEFT_NAME) {
        return clean_merchant(m);
    }
    if let Some(m) = grab(&ATM_WDL) {
        return clean_merchant(m);
    }
    if let Some(m) = grab(&DESC_RE) {
        let m = DESC_END.find(m).map_or(m, |e| &m[..e.start()]);
        let m = ACH_PREFIX.replace(m, "");
        let m = TRAILING_DASH_DIGITS.replace(&m, "");
        if let Some(c) = clean_merchant(&m) {
            return Some(c);
        }
    }
    if let Some(m) = grab(&AXIS_LINE) {
        if !BALANCE_KW.is_match(m) && !m.to_lowercase().contains("not you") {
            if let Some(c) = clean_merchant(m) {
                return Some(c);
            }
        }
    }
    for r in [
        &*DATE_THEN_ON,
        &*MPESA_WITHDRAW,
        &*JP_MERCHANT,
        &*ABSA_RE,
        &*PAIEMENT_CB,
        &*SEMI_CREDITED,
        &*NAME_BEFORE,
    ] {
        if let Some(m) = grab(r) {
            if let Some(c) = clean_merchant(m) {
                return Some(c);
            }
        }
    }
    for prep in [&*PREP_RE, &*FALLBACK_PREP] {
        for p in prep.find_iter(t).take(64) {
            let rest = prefix_chars(&t[p.end()..], 90);
            if MONEY_AT_START.is_match(rest) {
                continue;
            }
            let cand = cut_comma(&rest[..merchant_end(rest)]);
            if let Some(c) = clean_merchant_with(cand, true) {
                return Some(c);
            }
        }
    }
    if let Some(m) = grab(&TIME_COMMA_TAIL) {
        return clean_merchant(m);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every corpus message is taken as received on this date (year inference for "03 Nov").
    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 11, 20).expect("valid date")
    }

    #[test]
    fn numbers() {
        assert_eq!(
            canonical_number("1,23,456.78").as_deref(),
            Some("123456.78")
        );
        assert_eq!(canonical_number("1.234,56").as_deref(), Some("1234.56"));
        assert_eq!(canonical_number("1 234,56").as_deref(), Some("1234.56"));
        assert_eq!(canonical_number("23,45").as_deref(), Some("23.45"));
        assert_eq!(canonical_number("3,980").as_deref(), Some("3980"));
        assert_eq!(canonical_number("150.0").as_deref(), Some("150.0"));
        assert_eq!(canonical_number("0.125").as_deref(), Some("0.125"));
    }

    fn ok(text: &str, sender: Option<&str>) -> ParsedMessage {
        match parse(text, sender, today()) {
            Ok(p) => p,
            Err(r) => panic!("refused ({r:?}): {text}"),
        }
    }

    #[test]
    fn number_formats_in_messages() {
        let cases: &[(&str, &str, &str)] = &[
            ("Rs.1,23,456.78 debited from a/c XX1234", "123456.78", "INR"),
            ("Rs 500 debited from a/c XX1234", "500", "INR"),
            ("INR 2,499.00 spent on card XX5678", "2499.00", "INR"),
            ("₹349.00 debited from A/c XX4567", "349.00", "INR"),
            ("Kartenzahlung 1.234,56 € bei REWE", "1234.56", "EUR"),
            ("Compra de EUR 1.234,56 en ZARA", "1234.56", "EUR"),
            (
                "Virement reçu de 1 250,00 EUR de la part de ACME",
                "1250.00",
                "EUR",
            ),
            ("You spent £4.20 at COSTA", "4.20", "GBP"),
            ("Purchase of US$ 74.20 at TARGET", "74.20", "USD"),
            (
                "Ksh1,500.00 sent to JOHN DOE 0712345678 on 3/11/25",
                "1500.00",
                "KES",
            ),
            ("Amt:NGN5,000.00 DR", "5000.00", "NGN"),
            ("₦3,200.00 has been sent to TUNDE", "3200.00", "NGN"),
            ("Purchase R 89,90 at WOOLWORTHS", "89.90", "ZAR"),
            ("Compra aprovada de R$ 1.234,56 em LOJA", "1234.56", "BRL"),
            ("You used JPY 1,500 at LAWSON", "1500", "JPY"),
            ("ご利用金額：3,980円", "3980", "JPY"),
            ("Purchase of AED 125.50 at ENOC", "125.50", "AED"),
            ("CommBank: $45.60 purchase at WOOLWORTHS", "45.60", "AUD"),
            (
                "RBC: A purchase of $54.32 was made at TIM HORTONS",
                "54.32",
                "CAD",
            ),
        ];
        for (text, amount, currency) in cases {
            let p = ok(text, None);
            assert_eq!(p.amount, *amount, "{text}");
            assert_eq!(p.currency.as_deref(), Some(*currency), "{text}");
        }
    }

    #[test]
    fn amount_is_not_balance_or_fee() {
        let p = ok(
            "QK12AB34CD Confirmed. Ksh1,500.00 sent to JOHN DOE 0712345678 on 3/11/25 at 2:15 PM. New M-PESA balance is Ksh3,210.00. Transaction cost, Ksh23.00.",
            Some("MPESA"),
        );
        assert_eq!(p.amount, "1500.00");
        assert_eq!(p.balance.as_deref(), Some("3210.00"));
        assert_eq!(p.reference.as_deref(), Some("QK12AB34CD"));
        assert_eq!(p.last_digits, None);
        assert_eq!(p.date, NaiveDate::from_ymd_opt(2025, 11, 3));
        // A balance-only alert has no transaction amount.
        assert_eq!(
            parse(
                "Your available balance in account ending 1234 is $1,234.56.",
                None,
                today()
            ),
            Err(Refusal::NotATransaction)
        );
    }

    #[test]
    fn no_currency_shown() {
        let p = ok(
            "Dear UPI user A/C X1234 debited by 150.0 on date 03Nov25 trf to SWIGGY Refno 530712345678.",
            Some("VM-SBIUPI"),
        );
        assert_eq!(p.amount, "150.0");
        assert_eq!(p.currency, None);
    }

    #[test]
    fn date_order_and_year_inference() {
        // US: month first.
        let p = ok(
            "BofA: Debit card purchase of $23.45 at WHOLE FOODS on 11/03/25.",
            None,
        );
        assert_eq!(p.date, NaiveDate::from_ymd_opt(2025, 11, 3));
        // UK: day first.
        let p = ok(
            "Barclays: A payment of £45.00 to British Gas was made on 03/11/25.",
            None,
        );
        assert_eq!(p.date, NaiveDate::from_ymd_opt(2025, 11, 3));
        // "28 Dec" received on 20 Nov 2025 is last year's December.
        let p = ok(
            "HSBC: A card payment of GBP 23.50 at TESCO on 28 Dec.",
            None,
        );
        assert_eq!(p.date, NaiveDate::from_ymd_opt(2024, 12, 28));
    }

    #[test]
    fn refusals() {
        let cases: &[(&str, Refusal)] = &[
            (
                "123456 is OTP for transaction of INR 2,499.00 at AMAZON on card 5678.",
                Refusal::Otp,
            ),
            (
                "Use code 482913 to confirm a purchase of $899.00 at APPLE.COM.",
                Refusal::Otp,
            ),
            (
                "Ihre TAN für die Überweisung von 1.250,00 EUR lautet 482913.",
                Refusal::Otp,
            ),
            (
                "Pre-approved loan of Rs.5,00,000 can be credited to your A/c XX1234. T&C",
                Refusal::Promotion,
            ),
            (
                "Get $300 credited when you set up direct deposit! Terms apply.",
                Refusal::Promotion,
            ),
            (
                "Txn of Rs.2,499.00 on card 5678 at AMAZON has been declined.",
                Refusal::Declined,
            ),
            (
                "Ihre Kartenzahlung über 89,00 EUR wurde abgelehnt.",
                Refusal::Declined,
            ),
            (
                "Failed. Insufficient funds in your M-PESA account to send Ksh5,000.00.",
                Refusal::Declined,
            ),
            ("Hello, see you at 5!", Refusal::NotATransaction),
            ("", Refusal::NotATransaction),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text, None, today()), Err(*want), "{text}");
            assert!(!want.reason().is_empty());
        }
        let long = "Rs.100 debited ".repeat(400);
        assert_eq!(parse(&long, None, today()), Err(Refusal::NotATransaction));
    }

    #[test]
    fn serializes_snake_case() {
        let p = ok("You paid £3.40 at Pret A Manger", None);
        let json = serde_json::to_value(&p).expect("serializes");
        assert_eq!(json["direction"], "debit");
        assert_eq!(json["amount"], "3.40");
        assert_eq!(
            serde_json::to_value(Refusal::NotATransaction).expect("serializes"),
            "not_a_transaction"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn never_panics_on_arbitrary_text(text in "\\PC{0,600}", sender in proptest::option::of("\\PC{0,40}")) {
            let _ = parse(&text, sender.as_deref(), today());
        }

        #[test]
        fn never_panics_on_bank_like_text(
            parts in proptest::collection::vec(proptest::sample::select(GARBAGE_TOKENS.to_vec()), 0..80)
        ) {
            let text: String = parts.concat();
            let _ = parse(&text, Some("VM-HDFCBK"), today());
        }

        #[test]
        fn never_panics_any_today(text in "\\PC{0,200}", days in -1_000_000i32..1_000_000) {
            let today = NaiveDate::from_num_days_from_ce_opt(days.max(1)).unwrap_or(NaiveDate::MIN);
            let _ = parse(&text, None, today);
            let _ = parse(&text, None, NaiveDate::MAX);
            let _ = parse(&text, None, NaiveDate::MIN);
        }
    }

    const GARBAGE_TOKENS: &[&str] = &[
        "Rs.",
        "Rs ",
        "INR ",
        "₹",
        "$",
        "US$",
        "€",
        "EUR ",
        "£",
        "Ksh",
        "NGN",
        "₦",
        "R",
        "R$ ",
        "¥",
        "円",
        "debited",
        "credited",
        " from ",
        " to ",
        " at ",
        "A/c ",
        "XX",
        "**",
        "...",
        "1",
        "23",
        "456",
        "7890",
        ",",
        ".",
        " ",
        "\n",
        "/",
        "-",
        ":",
        "Avl Bal ",
        "on ",
        "Nov",
        "03",
        "2025",
        "OTP",
        "Ref ",
        "UPI/",
        "ending in ",
        "é",
        "日",
        "💸",
        "\u{a0}",
        "年",
        "月",
    ];

    /// 1 MiB of bank-flavoured garbage: the whole buffer is refused at once, and every 4 KiB
    /// window of it parses; both in bounded time.
    #[test]
    fn garbage_megabyte_bounded_time() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut text = String::with_capacity(1 << 20);
        while text.len() < (1 << 20) {
            let tok = GARBAGE_TOKENS[(next() % GARBAGE_TOKENS.len() as u64) as usize];
            text.push_str(tok);
            if next() % 5 == 0 {
                text.push(char::from_u32((next() % 0x2FFF) as u32).unwrap_or('?'));
            }
        }
        let started = std::time::Instant::now();
        assert_eq!(parse(&text, None, today()), Err(Refusal::NotATransaction));
        let whole = started.elapsed();

        let started = std::time::Instant::now();
        let mut chunks = 0;
        let mut transactions = 0;
        let mut start = 0;
        while start < text.len() {
            let mut end = (start + MAX_MESSAGE_BYTES).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            if parse(&text[start..end], Some("VM-HDFCBK"), today()).is_ok() {
                transactions += 1;
            }
            chunks += 1;
            start = end;
        }
        let random_chunks = chunks;
        // Adversarial repetitions, each filling a whole 4 KiB message.
        for unit in [
            "at A ",
            "Rs.1,",
            "1/1/25 ",
            "Desc:",
            "XX1 ",
            "Avl Bal ",
            "on 3 Nov ",
            "debited ",
            "de 1,00 EUR ",
            "Ref 1234 ",
            "9",
            ".",
            "é",
            "UPI/123456/",
            "to @ ",
        ] {
            let text = unit.repeat(MAX_MESSAGE_BYTES / unit.len());
            let _ = parse(&text, Some("VM-HDFCBK"), today());
            chunks += 1;
        }
        let windows = started.elapsed();
        println!(
            "1 MiB garbage: whole buffer refused in {whole:?}; {chunks} x 4 KiB windows ({random_chunks} random + adversarial repeats) parsed in {windows:?} ({transactions} random windows looked like transactions)"
        );
        assert!(
            whole.as_secs_f64() < 0.1,
            "whole-buffer refusal took {whole:?}"
        );
        assert!(
            windows.as_secs_f64() < 10.0,
            "4 KiB windows took {windows:?}"
        );
    }

    #[test]
    fn smoke() {
        let p = parse(
            "Rs 5000.00 debited from a/c **1234 on 02-11-25 to VPA abc@okaxis (UPI Ref No 530612345678).",
            Some("VM-HDFCBK"),
            today(),
        )
        .expect("transaction");
        assert_eq!(p.amount, "5000.00");
        assert_eq!(p.currency.as_deref(), Some("INR"));
        assert_eq!(p.direction, Direction::Debit);
        assert_eq!(p.last_digits.as_deref(), Some("1234"));
    }

    const CORPUS: &str = include_str!("../../assets/bank_messages.jsonl");
    const FIELDS: [&str; 9] = [
        "amount",
        "currency",
        "direction",
        "last_digits",
        "merchant",
        "date",
        "balance",
        "reference",
        "kind",
    ];

    fn norm_merchant(s: &str) -> String {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .trim_end_matches(['.', ',', ';'])
            .to_lowercase()
    }

    fn got_field(p: &ParsedMessage, field: &str) -> serde_json::Value {
        use serde_json::Value;
        let opt = |o: &Option<String>| o.clone().map_or(Value::Null, Value::String);
        match field {
            "amount" => Value::String(p.amount.clone()),
            "currency" => opt(&p.currency),
            "direction" => Value::String(
                match p.direction {
                    Direction::Debit => "debit",
                    Direction::Credit => "credit",
                }
                .into(),
            ),
            "last_digits" => opt(&p.last_digits),
            "merchant" => opt(&p.merchant.as_deref().map(norm_merchant)),
            "date" => p.date.map_or(Value::Null, |d| Value::String(d.to_string())),
            "balance" => opt(&p.balance),
            "reference" => opt(&p.reference),
            _ => Value::Null,
        }
    }

    /// Per split: field -> (correct, total).
    type Tally = std::collections::BTreeMap<&'static str, (usize, usize)>;

    #[test]
    fn corpus_accuracy() {
        use serde_json::Value;
        let mut tallies: std::collections::BTreeMap<String, Tally> = Default::default();
        let mut failures = Vec::new();
        let mut lines = 0;
        for (i, line) in CORPUS.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            lines += 1;
            let v: Value = serde_json::from_str(line).expect("corpus line is JSON");
            let text = v["text"].as_str().expect("text");
            let sender = v["sender"].as_str();
            let split = v["split"].as_str().unwrap_or("dev").to_string();
            let expect = &v["expect"];
            let kind = expect["kind"].as_str().expect("kind");
            let result = parse(text, sender, today());
            let got_kind = match &result {
                Ok(_) => "transaction",
                Err(Refusal::Otp) => "otp",
                Err(Refusal::Promotion) => "promotion",
                Err(Refusal::Declined) => "declined",
                Err(Refusal::NotATransaction) => "not_a_transaction",
            };
            let mut record = |split: &str, field: &'static str, ok: bool| {
                for key in [split, "all"] {
                    let e = tallies
                        .entry(key.to_string())
                        .or_default()
                        .entry(field)
                        .or_insert((0, 0));
                    e.1 += 1;
                    if ok {
                        e.0 += 1;
                    }
                }
            };
            // kind: transaction vs each refusal
            record(&split, "kind", got_kind == kind);
            if got_kind != kind {
                failures.push(format!(
                    "#{} [{split}] kind: want {kind} got {got_kind}: {text}",
                    i + 1
                ));
            }
            if kind != "transaction" {
                continue;
            }
            for field in FIELDS.iter().take(8) {
                let mut want = expect[*field].clone();
                if *field == "merchant" {
                    if let Some(s) = want.as_str() {
                        want = Value::String(norm_merchant(s));
                    }
                }
                let got = match &result {
                    Ok(p) => got_field(p, field),
                    Err(_) => Value::String("<refused>".into()),
                };
                let ok = got == want;
                record(&split, field, ok);
                if !ok && result.is_ok() {
                    failures.push(format!(
                        "#{} [{split}] {field}: want {want} got {got}: {}",
                        i + 1,
                        text.replace('\n', " | ")
                    ));
                }
            }
        }
        println!("\ncorpus: {lines} messages\n");
        // dev first, "all" last, any other split (holdout, holdout2, ...) in between.
        let mut splits: Vec<&String> = tallies
            .keys()
            .filter(|k| *k != "dev" && *k != "all")
            .collect();
        splits.sort();
        let splits: Vec<&str> = std::iter::once("dev")
            .chain(splits.into_iter().map(String::as_str))
            .chain(std::iter::once("all"))
            .collect();
        let pct = |t: Option<&Tally>, f: &str| match t.and_then(|t| t.get(f)) {
            Some(&(ok, n)) if n > 0 => {
                format!("{ok}/{n} {:5.1}%", 100.0 * ok as f64 / n as f64)
            }
            _ => "-".to_string(),
        };
        let mut header = format!("{:<12}", "field");
        for sp in &splits {
            header.push_str(&format!(" {sp:>18}"));
        }
        println!("{header}");
        for f in FIELDS {
            let mut row = format!("{f:<12}");
            for sp in &splits {
                row.push_str(&format!(" {:>18}", pct(tallies.get(*sp), f)));
            }
            println!("{row}");
        }
        println!("\nmismatches ({}):", failures.len());
        for f in &failures {
            println!("  {f}");
        }
        let all = tallies.get("all").expect("corpus not empty");
        let rate = |f: &str| {
            let (ok, n) = all.get(f).copied().unwrap_or((0, 0));
            ok as f64 / n.max(1) as f64
        };
        assert!(lines >= 240, "corpus has {lines} lines, want >= 240");
        for f in ["amount", "direction", "last_digits"] {
            assert!(rate(f) >= 0.98, "{f} accuracy {:.3} < 0.98", rate(f));
        }
        assert!(
            rate("kind") >= 0.95,
            "kind accuracy {:.3} < 0.95",
            rate("kind")
        );
    }
}
