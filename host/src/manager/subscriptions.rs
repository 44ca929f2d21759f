//! Webhook subscriptions' changes that raise or resolve an alert, each in the change's
//! transaction: the hub disabling one (`events::delivery`) raises `subscription-disabled`;
//! someone resuming or deleting it resolves that.

use super::Manager;
use super::alerts::{AlertSubject, Resolved, SUBSCRIPTION_DISABLED, new_alert};
use crate::store::subscriptions::{self, DeliveryAttempt, RoundEnd, SubscriptionRecord};
use crate::store::{StoreError, Tx};

impl Manager {
    /// Records a delivery round of `subscription` by lease `owner`
    /// ([`subscriptions::end_round`]); a round that disabled it raises an alert with it.
    pub async fn end_delivery_round(
        &self,
        subscription: &SubscriptionRecord,
        owner: &str,
        end: &RoundEnd,
        attempts: &[DeliveryAttempt],
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        let subject = AlertSubject::Subscription(subscription);
        let mut tx = inner.db.begin().await?;
        let moved = subscriptions::end_round(&mut tx, &subscription.id, owner, end, attempts).await?;
        let raised = match &end.disabled_reason {
            Some(reason) if moved => {
                let message = format!("the hub disabled webhook subscription {}: {reason}", subject.name());
                let alert = new_alert(subject, None, SUBSCRIPTION_DISABLED, message);
                let queued = inner.write_alert(&mut tx, subject, &alert).await?;
                Some((alert, queued))
            }
            _ => None,
        };
        tx.commit().await?;
        if let Some((alert, queued)) = raised {
            inner.alert_raised(subject, &alert, queued).await;
        }
        Ok(())
    }

    /// Sets a subscription's status by someone's hand ([`subscriptions::set_status`]);
    /// resuming it resolves its alert. `false` when there is no such subscription.
    pub async fn set_subscription_status(
        &self,
        subscription: &SubscriptionRecord,
        status: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.inner.db.begin().await?;
        if !subscriptions::set_status(&mut tx, &subscription.id, status).await? {
            return Ok(false);
        }
        let resolved = match status {
            "active" => Some(self.resolve_disabled(&mut tx, subscription).await?),
            _ => None,
        };
        tx.commit().await?;
        if let Some(resolved) = resolved {
            (self.inner).alerts_resolved(
                AlertSubject::Subscription(subscription),
                SUBSCRIPTION_DISABLED,
                resolved,
            );
        }
        Ok(true)
    }

    /// Deletes a subscription and its attempts, resolving its alert. `false` when there is
    /// no such subscription.
    pub async fn delete_subscription(&self, subscription: &SubscriptionRecord) -> Result<bool, StoreError> {
        let mut tx = self.inner.db.begin().await?;
        if !subscriptions::delete(&mut tx, &subscription.id).await? {
            return Ok(false);
        }
        let resolved = self.resolve_disabled(&mut tx, subscription).await?;
        tx.commit().await?;
        (self.inner).alerts_resolved(
            AlertSubject::Subscription(subscription),
            SUBSCRIPTION_DISABLED,
            resolved,
        );
        Ok(true)
    }

    async fn resolve_disabled(&self, tx: &mut Tx, subscription: &SubscriptionRecord) -> Result<Resolved, StoreError> {
        let subject = AlertSubject::Subscription(subscription);
        self.inner.resolve_alerts_in(tx, subject, SUBSCRIPTION_DISABLED).await
    }
}
