//! The delegation screen's actions: `a` opens the new-delegation form (from, to, until,
//! reason) and sends it to the store's `add_delegation`; `x` revokes the selected delegation
//! (after a y/n) through `revoke_delegation`. The store checks who may delegate for whom and
//! refuses with a reason, which the status line shows; nothing changes on a refusal.

use super::*;
use crate::domain::delegation::parse_until;
use crate::store::api::NewDelegation;
use crate::tui::views::delegations::new_form;
use crate::tui::widgets::form::{Form, FormKey};

impl AppState {
    /// Opens the new-delegation form, from the operator by default.
    pub(super) fn open_delegation_form(&mut self) -> Vec<Effect> {
        if self.view() != ViewId::Delegations {
            self.flash(FlashLevel::Info, "a adds a delegation in :delegations");
            return Vec::new();
        }
        self.popup = Some(Popup::Delegation(Box::new(new_form(&self.operator.user))));
        Vec::new()
    }

    /// Asks to revoke the selected delegation, or says why it cannot be.
    pub(super) fn revoke_selected_delegation(&mut self) -> Vec<Effect> {
        if self.view() != ViewId::Delegations {
            self.flash(FlashLevel::Info, "x revokes a delegation in :delegations");
            return Vec::new();
        }
        let Some(d) = self.delegations.list.current() else {
            self.flash(FlashLevel::Info, "no delegation selected");
            return Vec::new();
        };
        match d.state(self.now) {
            "in force" => {}
            other => {
                self.flash(
                    FlashLevel::Info,
                    format!("delegation {} is already {other}, nothing to revoke", d.id),
                );
                return Vec::new();
            }
        }
        let cmds = vec![StoreCmd::RevokeDelegation {
            id: d.id,
            from: d.from.clone(),
            to: d.to.clone(),
        }];
        self.confirm_or_run("revoke", cmds, true)
    }

    /// A key while the delegation form is open.
    pub(super) fn delegation_key(&mut self, mut form: Box<Form>, key: KeyEvent) -> Vec<Effect> {
        match form.key(key) {
            FormKey::Editing => {
                self.popup = Some(Popup::Delegation(form));
                Vec::new()
            }
            FormKey::Cancel => {
                self.flash(
                    FlashLevel::Info,
                    "new delegation abandoned, nothing changed",
                );
                Vec::new()
            }
            FormKey::Submit => match self.delegation_from(&form) {
                Ok(new) => vec![Effect::Run(vec![StoreCmd::AddDelegation { new }])],
                Err(why) => {
                    form.error = Some(why);
                    self.popup = Some(Popup::Delegation(form));
                    Vec::new()
                }
            },
        }
    }

    /// The delegation the form describes, or what is missing (checked again by the store).
    fn delegation_from(&self, form: &Form) -> Result<NewDelegation, String> {
        let value = |key: &str| form.value(key).unwrap_or("").trim().to_string();
        let (from, to) = (value("from"), value("to"));
        if from.is_empty() || to.is_empty() {
            return Err("from and to name operators (approvers or admins)".into());
        }
        let now = chrono::DateTime::from_timestamp_millis(self.now).unwrap_or_default();
        let until = parse_until(&value("until"), now).map_err(|e| format!("until: {e}"))?;
        let reason = Some(value("reason")).filter(|r| !r.is_empty());
        Ok(NewDelegation {
            from,
            to,
            until,
            reason,
        })
    }
}
