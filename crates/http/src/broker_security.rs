//! [`HttpSecurity`] over the broker's own security: HTTP basic checks the
//! password against the SCRAM credentials in the metadata image (the way
//! SASL PLAIN does), and every decision goes through the same ACL
//! [`Authorizer`] the Kafka handlers use, so a principal may do over HTTP
//! exactly what it may do over the Kafka protocol.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use sluice_broker::authz::Authorizer;
use sluice_broker::handlers::RequestContext;
use sluice_broker::sasl::{SaslSettings, VERIFIED_PASSWORDS_MAX_ENTRIES, VerifiedPasswords};
use sluice_broker::{Broker, Principal};
use sluice_metadata::MetadataLog;
use sluice_metadata::acl::{AclOperation, CLUSTER_RESOURCE_NAME, ResourceType};

use crate::auth::{HttpPrincipal, HttpSecurity, Operation, Resource};

/// The listener name HTTP requests carry in the authorizer's context.
const HTTP_LISTENER: &str = "HTTP";

/// The broker's SCRAM users and ACL authorizer, for the HTTP listener.
pub struct BrokerSecurity {
    metadata: Arc<dyn MetadataLog>,
    authorizer: Arc<Authorizer>,
    /// Holds the stand-in credentials unknown users are checked against.
    sasl: SaslSettings,
    /// Successful basic-auth checks, so a client that sends its password
    /// on every request (a console, a scraper) costs one key derivation,
    /// not one per request. `None` if the process had no randomness for
    /// the cache's key: every request then derives, as before.
    verified: Option<VerifiedPasswords>,
}

impl std::fmt::Debug for BrokerSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerSecurity").finish_non_exhaustive()
    }
}

impl BrokerSecurity {
    /// Security over `broker`'s credentials and authorizer.
    pub fn new(broker: &Broker) -> BrokerSecurity {
        BrokerSecurity {
            metadata: Arc::clone(&broker.metadata),
            authorizer: Arc::clone(&broker.authorizer),
            sasl: SaslSettings::from_config(&broker.config.sasl),
            verified: VerifiedPasswords::new(VERIFIED_PASSWORDS_MAX_ENTRIES)
                .inspect_err(|e| {
                    tracing::error!("no randomness for the HTTP password cache: {e}");
                })
                .ok(),
        }
    }
}

/// `Type:name` as the broker's principal; a string without a type is a
/// user name.
fn principal(p: &HttpPrincipal) -> Principal {
    let (principal_type, name) = p.as_str().split_once(':').unwrap_or(("User", p.as_str()));
    Principal {
        principal_type: principal_type.to_owned(),
        name: name.to_owned(),
    }
}

fn acl_operation(operation: Operation) -> AclOperation {
    match operation {
        Operation::Read => AclOperation::Read,
        Operation::Write => AclOperation::Write,
        Operation::Create => AclOperation::Create,
        Operation::Delete => AclOperation::Delete,
        Operation::Alter => AclOperation::Alter,
        Operation::Describe => AclOperation::Describe,
        Operation::DescribeConfigs => AclOperation::DescribeConfigs,
        Operation::AlterConfigs => AclOperation::AlterConfigs,
    }
}

impl HttpSecurity for BrokerSecurity {
    fn verify_password(&self, user: &str, password: &str) -> Option<HttpPrincipal> {
        let image = self.metadata.image();
        let ok = match &self.verified {
            Some(verified) => self
                .sasl
                .verify_password_cached(&image, user, password, verified),
            None => self.sasl.verify_password(&image, user, password),
        };
        ok.then(|| HttpPrincipal(format!("User:{user}")))
    }

    fn authorize(
        &self,
        principal_: &HttpPrincipal,
        host: IpAddr,
        operation: Operation,
        resource: Resource<'_>,
    ) -> bool {
        let ctx = RequestContext {
            peer: SocketAddr::new(host, 0),
            principal: Arc::new(principal(principal_)),
            listener: Arc::from(HTTP_LISTENER),
            throttle: Default::default(),
        };
        let (resource_type, name) = match resource {
            Resource::Topic(name) => (ResourceType::Topic, name),
            Resource::Group(name) => (ResourceType::Group, name),
            Resource::Cluster => (ResourceType::Cluster, CLUSTER_RESOURCE_NAME),
        };
        self.authorizer
            .authorize(&ctx, acl_operation(operation), resource_type, name)
    }
}
