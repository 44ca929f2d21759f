//! Accounts (from the SSO): validate, link to the practitioner with the same NIK, seal,
//! and decide create / update / unchanged against what is stored.

use super::Pipeline;
use crate::model::{Account, CanonicalRecord};
use crate::store::StoreError;
use crate::store::Timestamp;
use crate::store::accounts::SealedAccount;
use crate::store::runs::RunCounts;
use std::collections::HashMap;

/// An account's reason for rejection, if any. Reasons never quote the value.
pub(super) fn validate(account: &Account) -> Result<(), String> {
    let within = |value: &str, max: usize| !value.trim().is_empty() && value.len() <= max;
    if !within(&account.subject, 256) {
        return Err("subject must be 1-256 characters".into());
    }
    if !within(&account.username, 256) {
        return Err("username must be 1-256 characters".into());
    }
    if let Some(nik) = &account.nik
        && !(nik.len() == 16 && nik.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("NIK must be 16 digits".into());
    }
    if account.roles.len() > 64 {
        return Err("more than 64 roles".into());
    }
    Ok(())
}

impl Pipeline {
    /// Rows to upsert for the valid accounts of a batch, counting each in `counts`.
    pub(super) async fn seal_accounts(
        &self,
        accounts: Vec<Account>,
        now: Timestamp,
        counts: &mut RunCounts,
    ) -> Result<Vec<SealedAccount>, StoreError> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let blind = &self.keys.blind;
        let subject_index = |a: &Account| blind.index("account-subject", &[&a.source.system, &a.subject]);
        let nik_indexes: Vec<Vec<u8>> = accounts
            .iter()
            .filter_map(|a| a.nik.as_deref())
            .map(|n| blind.nik(n))
            .collect();
        let practitioner_of: HashMap<Vec<u8>, String> =
            self.db.practitioners_by_nik(&nik_indexes).await?.into_iter().collect();
        let mut stored = HashMap::new();
        let mut by_system: HashMap<&str, Vec<Vec<u8>>> = HashMap::new();
        for a in &accounts {
            by_system.entry(&a.source.system).or_default().push(subject_index(a));
        }
        for (system, subjects) in by_system {
            for s in self.db.stored_accounts(system, &subjects).await? {
                stored.insert(s.subject_index.clone(), s);
            }
        }

        let cipher = self.keys.cipher();
        let mut rows: Vec<SealedAccount> = Vec::new();
        let mut row_of: HashMap<Vec<u8>, usize> = HashMap::new();
        for account in accounts {
            let subject_index = subject_index(&account);
            let nik_index = account.nik.as_deref().map(|n| blind.nik(n));
            let practitioner_id = nik_index.as_ref().and_then(|n| practitioner_of.get(n)).cloned();
            let mut content = account.clone();
            content.source.updated_at = None;
            let content_hash = blind.index(
                "account-content",
                &[&serde_json::to_string(&content).expect("records serialize")],
            );
            let id = match stored.get(&subject_index) {
                Some(s) if s.content_hash == content_hash && s.practitioner_id == practitioner_id => {
                    counts.unchanged += 1;
                    continue;
                }
                Some(s) => {
                    counts.updated += 1;
                    s.id.clone()
                }
                None if row_of.contains_key(&subject_index) => rows[row_of[&subject_index]].id.clone(),
                None => {
                    counts.created += 1;
                    uuid::Uuid::now_v7().to_string()
                }
            };
            let seal = |column: &str, value: &str| cipher.encrypt_str("accounts", column, &id, value);
            let row = SealedAccount {
                id: id.clone(),
                source_system: account.source.system.clone(),
                subject_index: subject_index.clone(),
                nik_index,
                practitioner_id,
                key_version: cipher.active_version() as i64,
                subject: seal("subject", &account.subject),
                username: seal("username", &account.username),
                email: account.email.as_deref().map(|e| seal("email", e)),
                roles: serde_json::to_string(&account.roles).expect("strings serialize"),
                active: account.active,
                content_hash,
                created_at: now,
                updated_at: now,
            };
            // One subject twice in a batch: the later row wins, stored once.
            match row_of.get(&subject_index) {
                Some(&pos) => rows[pos] = row,
                None => {
                    row_of.insert(subject_index, rows.len());
                    rows.push(row);
                }
            }
        }
        Ok(rows)
    }
}

/// Splits the accounts out of a batch, rejecting invalid ones.
pub(super) fn take_account(
    index: usize,
    account: Account,
    valid: &mut Vec<Account>,
    rejects: &mut Vec<(usize, String, CanonicalRecord)>,
) {
    match validate(&account) {
        Ok(()) => valid.push(account),
        Err(reason) => rejects.push((index, reason, CanonicalRecord::Account(account))),
    }
}
