//! The on-disk encoding of metadata records: the value of each record in the
//! metadata log. `docs/design.md` ("Metadata log") gives the byte layout.
//!
//! Two formats exist. Version 0 is a JSON object with a `type` tag, written
//! by brokers before the compact format existed; it is only read, never
//! written. Version 1 is a small big-endian binary encoding: a 1,000-partition
//! topic costs about 46 KB instead of 115 KB, and a change too large for one
//! batch is framed by [`Decoded::Begin`] / [`Decoded::End`] markers.
//!
//! This module does no I/O and knows nothing about the image.

use serde::Deserialize;
use uuid::Uuid;

use crate::image::{BrokerEndpoint, HttpTokenImage, MetadataRecord};

/// First byte of every version-1 value. A version-0 (JSON) value starts with
/// `{`, so the first byte alone tells the formats apart.
pub const FORMAT_V1: u8 = 1;
/// First byte of a version-0 (JSON object) value.
const FORMAT_JSON: u8 = b'{';

const TYPE_TOPIC: u8 = 1;
const TYPE_PARTITION: u8 = 2;
const TYPE_TOPIC_CONFIG: u8 = 3;
const TYPE_REMOVE_TOPIC: u8 = 4;
const TYPE_PRODUCER_IDS: u8 = 5;
const TYPE_REGISTER_BROKER: u8 = 6;
const TYPE_FENCE_BROKER: u8 = 7;
const TYPE_UNREGISTER_BROKER: u8 = 8;
const TYPE_CLUSTER_ID: u8 = 9;
const TYPE_BEGIN: u8 = 10;
const TYPE_END: u8 = 11;
const TYPE_ABORT: u8 = 12;
const TYPE_DECOMMISSION_BROKER: u8 = 13;
const TYPE_BROKER_CONFIG: u8 = 14;
const TYPE_USER_SCRAM_CREDENTIAL: u8 = 15;
const TYPE_REMOVE_USER_SCRAM_CREDENTIAL: u8 = 16;
const TYPE_ACCESS_CONTROL_ENTRY: u8 = 17;
const TYPE_REMOVE_ACCESS_CONTROL_ENTRY: u8 = 18;
const TYPE_HTTP_TOKEN: u8 = 20;
const TYPE_REMOVE_HTTP_TOKEN: u8 = 21;
/// Pre-assigned to the client quota work (15-18 belong to SASL and ACLs).
const TYPE_CLIENT_QUOTA: u8 = 19;

/// What one metadata log value says.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A change to the image.
    Record(MetadataRecord),
    /// The next `records` records form one change that spans several
    /// batches; they apply only once the matching [`Decoded::End`] is read.
    Begin {
        /// Records between this marker and the end marker.
        records: u32,
    },
    /// The change opened by the last [`Decoded::Begin`] is complete.
    End,
    /// The change opened by the last [`Decoded::Begin`] was abandoned
    /// (written at start-up after a crash cut it short).
    Abort,
}

/// A value that is not a metadata record.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The value is empty.
    #[error("empty value")]
    Empty,
    /// The first byte is neither `{` (JSON) nor a known binary version.
    #[error("unknown metadata record format {0}")]
    UnknownFormat(u8),
    /// A binary value names a record type this broker does not know.
    #[error("unknown metadata record type {0}")]
    UnknownType(u8),
    /// The value ends inside field `field`.
    #[error("value ends inside `{field}`")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes follow the last field.
    #[error("{0} bytes after the last field")]
    TrailingBytes(usize),
    /// A string field is not UTF-8.
    #[error("field `{0}` is not UTF-8")]
    NotUtf8(&'static str),
    /// A version-0 JSON value does not parse.
    #[error("JSON record: {0}")]
    Json(#[source] serde_json::Error),
    /// A field does not fit the binary format (a name longer than 64 KiB).
    #[error("field `{0}` is too long to encode")]
    TooLong(&'static str),
    /// A field holds a code its type does not define (an ACL's operation).
    #[error("field `{field}` holds unknown code {code}")]
    UnknownCode {
        /// The field.
        field: &'static str,
        /// The code read.
        code: i8,
    },
}

/// Encodes a record in the current (version 1) format.
pub fn encode(record: &MetadataRecord) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(48);
    out.push(FORMAT_V1);
    match record {
        MetadataRecord::Topic { name, topic_id } => {
            out.push(TYPE_TOPIC);
            out.extend_from_slice(topic_id.as_bytes());
            put_str16(&mut out, name, "name")?;
        }
        MetadataRecord::Partition {
            topic_id,
            partition,
            leader,
            replicas,
            isr,
            leader_epoch,
            partition_epoch,
            adding_replicas,
            removing_replicas,
        } => {
            out.push(TYPE_PARTITION);
            out.extend_from_slice(topic_id.as_bytes());
            out.extend_from_slice(&partition.to_be_bytes());
            out.extend_from_slice(&leader.to_be_bytes());
            out.extend_from_slice(&leader_epoch.to_be_bytes());
            put_ids(&mut out, replicas, "replicas")?;
            put_ids(&mut out, isr, "isr")?;
            // Appended last: a value that ends after `isr` is one written
            // before partition epochs existed, and decodes with epoch 0.
            out.extend_from_slice(&partition_epoch.to_be_bytes());
            // Appended after the epoch, and only while a reassignment runs:
            // a value that ends after the epoch has none, so records without
            // one keep their size and stay readable by brokers from before
            // reassignment.
            if !adding_replicas.is_empty() || !removing_replicas.is_empty() {
                put_ids(&mut out, adding_replicas, "adding_replicas")?;
                put_ids(&mut out, removing_replicas, "removing_replicas")?;
            }
        }
        MetadataRecord::TopicConfig {
            topic_id,
            name,
            value,
        } => {
            out.push(TYPE_TOPIC_CONFIG);
            out.extend_from_slice(topic_id.as_bytes());
            put_str16(&mut out, name, "name")?;
            put_value(&mut out, value.as_deref())?;
        }
        MetadataRecord::RemoveTopic { topic_id } => {
            out.push(TYPE_REMOVE_TOPIC);
            out.extend_from_slice(topic_id.as_bytes());
        }
        MetadataRecord::ProducerIds { next_producer_id } => {
            out.push(TYPE_PRODUCER_IDS);
            out.extend_from_slice(&next_producer_id.to_be_bytes());
        }
        MetadataRecord::RegisterBroker {
            broker_id,
            incarnation_id,
            epoch,
            host,
            port,
            rack,
            endpoints,
        } => {
            out.push(TYPE_REGISTER_BROKER);
            out.extend_from_slice(&broker_id.to_be_bytes());
            out.extend_from_slice(incarnation_id.as_bytes());
            out.extend_from_slice(&epoch.to_be_bytes());
            put_str16(&mut out, host, "host")?;
            out.extend_from_slice(&port.to_be_bytes());
            match rack {
                None => out.push(0),
                Some(rack) => {
                    out.push(1);
                    put_str16(&mut out, rack, "rack")?;
                }
            }
            // A trailing, optional list: a record without endpoints is
            // byte for byte what brokers wrote before named listeners.
            if !endpoints.is_empty() {
                let n =
                    u16::try_from(endpoints.len()).map_err(|_| CodecError::TooLong("endpoints"))?;
                out.extend_from_slice(&n.to_be_bytes());
                for e in endpoints {
                    put_str16(&mut out, &e.name, "endpoint name")?;
                    put_str16(&mut out, &e.host, "endpoint host")?;
                    out.extend_from_slice(&e.port.to_be_bytes());
                    out.extend_from_slice(&e.security_protocol.to_be_bytes());
                }
            }
        }
        MetadataRecord::FenceBroker { broker_id, fenced } => {
            out.push(TYPE_FENCE_BROKER);
            out.extend_from_slice(&broker_id.to_be_bytes());
            out.push(u8::from(*fenced));
        }
        MetadataRecord::DecommissionBroker {
            broker_id,
            decommissioning,
        } => {
            out.push(TYPE_DECOMMISSION_BROKER);
            out.extend_from_slice(&broker_id.to_be_bytes());
            out.push(u8::from(*decommissioning));
        }
        MetadataRecord::BrokerConfig {
            broker_id,
            name,
            value,
        } => {
            out.push(TYPE_BROKER_CONFIG);
            out.extend_from_slice(&broker_id.to_be_bytes());
            put_str16(&mut out, name, "name")?;
            put_value(&mut out, value.as_deref())?;
        }
        MetadataRecord::UnregisterBroker { broker_id } => {
            out.push(TYPE_UNREGISTER_BROKER);
            out.extend_from_slice(&broker_id.to_be_bytes());
        }
        MetadataRecord::ClusterId { cluster_id } => {
            out.push(TYPE_CLUSTER_ID);
            put_str16(&mut out, cluster_id, "cluster_id")?;
        }
        MetadataRecord::UserScramCredential {
            name,
            mechanism,
            salt,
            stored_key,
            server_key,
            iterations,
        } => {
            out.push(TYPE_USER_SCRAM_CREDENTIAL);
            put_str16(&mut out, name, "name")?;
            out.extend_from_slice(&mechanism.to_be_bytes());
            put_bytes16(&mut out, salt, "salt")?;
            put_bytes16(&mut out, stored_key, "stored_key")?;
            put_bytes16(&mut out, server_key, "server_key")?;
            out.extend_from_slice(&iterations.to_be_bytes());
        }
        MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
            out.push(TYPE_REMOVE_USER_SCRAM_CREDENTIAL);
            put_str16(&mut out, name, "name")?;
            out.extend_from_slice(&mechanism.to_be_bytes());
        }
        MetadataRecord::AccessControlEntry { id, acl } => {
            out.push(TYPE_ACCESS_CONTROL_ENTRY);
            out.extend_from_slice(id.as_bytes());
            out.push(acl.resource_type.code() as u8);
            put_str16(&mut out, &acl.resource_name, "resource_name")?;
            out.push(acl.pattern_type.code() as u8);
            put_str16(&mut out, &acl.principal, "principal")?;
            put_str16(&mut out, &acl.host, "host")?;
            out.push(acl.operation.code() as u8);
            out.push(acl.permission.code() as u8);
        }
        MetadataRecord::RemoveAccessControlEntry { id } => {
            out.push(TYPE_REMOVE_ACCESS_CONTROL_ENTRY);
            out.extend_from_slice(id.as_bytes());
        }
        MetadataRecord::HttpToken(token) => {
            out.push(TYPE_HTTP_TOKEN);
            put_str16(&mut out, &token.id, "id")?;
            put_str16(&mut out, &token.principal, "principal")?;
            out.extend_from_slice(&token.sha256);
            out.extend_from_slice(&token.created_ms.to_be_bytes());
            out.extend_from_slice(&token.expires_ms.to_be_bytes());
        }
        MetadataRecord::RemoveHttpToken { id } => {
            out.push(TYPE_REMOVE_HTTP_TOKEN);
            put_str16(&mut out, id, "id")?;
        }
        MetadataRecord::ClientQuota { entity, key, value } => {
            out.push(TYPE_CLIENT_QUOTA);
            let n = u8::try_from(entity.len()).map_err(|_| CodecError::TooLong("entity"))?;
            out.push(n);
            for (entity_type, name) in entity {
                put_str16(&mut out, entity_type, "entity_type")?;
                match name {
                    None => out.push(0),
                    Some(name) => {
                        out.push(1);
                        put_str16(&mut out, name, "entity_name")?;
                    }
                }
            }
            put_str16(&mut out, key, "key")?;
            match value {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    out.extend_from_slice(&v.to_bits().to_be_bytes());
                }
            }
        }
    }
    Ok(out)
}

/// Encodes a begin marker for a change of `records` records.
pub fn encode_begin(records: u32) -> Vec<u8> {
    let mut out = vec![FORMAT_V1, TYPE_BEGIN];
    out.extend_from_slice(&records.to_be_bytes());
    out
}

/// Encodes the end marker of a multi-batch change.
pub fn encode_end() -> Vec<u8> {
    vec![FORMAT_V1, TYPE_END]
}

/// Encodes the abort marker of a multi-batch change.
pub fn encode_abort() -> Vec<u8> {
    vec![FORMAT_V1, TYPE_ABORT]
}

/// Decodes a value in either format.
pub fn decode(value: &[u8]) -> Result<Decoded, CodecError> {
    match value.first() {
        None => Err(CodecError::Empty),
        Some(&FORMAT_JSON) => serde_json::from_slice::<JsonRecord>(value)
            .map(|r| Decoded::Record(r.into()))
            .map_err(CodecError::Json),
        Some(&FORMAT_V1) => {
            let mut r = Reader { rest: &value[1..] };
            let decoded = decode_v1(&mut r)?;
            if !r.rest.is_empty() {
                return Err(CodecError::TrailingBytes(r.rest.len()));
            }
            Ok(decoded)
        }
        Some(&other) => Err(CodecError::UnknownFormat(other)),
    }
}

fn decode_v1(r: &mut Reader<'_>) -> Result<Decoded, CodecError> {
    let record = match r.u8("type")? {
        TYPE_TOPIC => MetadataRecord::Topic {
            topic_id: r.uuid("topic_id")?,
            name: r.str16("name")?,
        },
        TYPE_PARTITION => {
            let topic_id = r.uuid("topic_id")?;
            let partition = r.i32("partition")?;
            let leader = r.i32("leader")?;
            let leader_epoch = r.i32("leader_epoch")?;
            let replicas = r.ids("replicas")?;
            let isr = r.ids("isr")?;
            // Brokers before partition epochs ended the record here; any
            // other length is still checked (a cut epoch is truncated, and
            // bytes after it are trailing).
            let partition_epoch = if r.rest.is_empty() {
                0
            } else {
                r.i32("partition_epoch")?
            };
            // Likewise a value ending after the epoch has no reassignment;
            // when one follows, both lists are there.
            let (adding_replicas, removing_replicas) = if r.rest.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                (r.ids("adding_replicas")?, r.ids("removing_replicas")?)
            };
            MetadataRecord::Partition {
                topic_id,
                partition,
                leader,
                leader_epoch,
                replicas,
                isr,
                partition_epoch,
                adding_replicas,
                removing_replicas,
            }
        }
        TYPE_TOPIC_CONFIG => MetadataRecord::TopicConfig {
            topic_id: r.uuid("topic_id")?,
            name: r.str16("name")?,
            value: r.value()?,
        },
        TYPE_BROKER_CONFIG => MetadataRecord::BrokerConfig {
            broker_id: r.i32("broker_id")?,
            name: r.str16("name")?,
            value: r.value()?,
        },
        TYPE_REMOVE_TOPIC => MetadataRecord::RemoveTopic {
            topic_id: r.uuid("topic_id")?,
        },
        TYPE_PRODUCER_IDS => MetadataRecord::ProducerIds {
            next_producer_id: r.i64("next_producer_id")?,
        },
        TYPE_REGISTER_BROKER => MetadataRecord::RegisterBroker {
            broker_id: r.i32("broker_id")?,
            incarnation_id: r.uuid("incarnation_id")?,
            epoch: r.i64("epoch")?,
            host: r.str16("host")?,
            port: r.i32("port")?,
            rack: match r.u8("rack")? {
                0 => None,
                _ => Some(r.str16("rack")?),
            },
            endpoints: r.endpoints()?,
        },
        TYPE_FENCE_BROKER => MetadataRecord::FenceBroker {
            broker_id: r.i32("broker_id")?,
            fenced: r.u8("fenced")? != 0,
        },
        TYPE_DECOMMISSION_BROKER => MetadataRecord::DecommissionBroker {
            broker_id: r.i32("broker_id")?,
            decommissioning: r.u8("decommissioning")? != 0,
        },
        TYPE_UNREGISTER_BROKER => MetadataRecord::UnregisterBroker {
            broker_id: r.i32("broker_id")?,
        },
        TYPE_CLUSTER_ID => MetadataRecord::ClusterId {
            cluster_id: r.str16("cluster_id")?,
        },
        TYPE_USER_SCRAM_CREDENTIAL => MetadataRecord::UserScramCredential {
            name: r.str16("name")?,
            mechanism: r.u8("mechanism")? as i8,
            salt: r.bytes16("salt")?,
            stored_key: r.bytes16("stored_key")?,
            server_key: r.bytes16("server_key")?,
            iterations: r.i32("iterations")?,
        },
        TYPE_REMOVE_USER_SCRAM_CREDENTIAL => MetadataRecord::RemoveUserScramCredential {
            name: r.str16("name")?,
            mechanism: r.u8("mechanism")? as i8,
        },
        TYPE_ACCESS_CONTROL_ENTRY => {
            use crate::acl::{AclBinding, AclOperation, AclPermission, PatternType, ResourceType};
            let id = r.uuid("id")?;
            let resource_type = r.code("resource_type", ResourceType::from_code)?;
            let resource_name = r.str16("resource_name")?;
            let pattern_type = r.code("pattern_type", PatternType::from_code)?;
            let principal = r.str16("principal")?;
            let host = r.str16("host")?;
            let operation = r.code("operation", AclOperation::from_code)?;
            let permission = r.code("permission_type", AclPermission::from_code)?;
            MetadataRecord::AccessControlEntry {
                id,
                acl: AclBinding {
                    resource_type,
                    resource_name,
                    pattern_type,
                    principal,
                    host,
                    operation,
                    permission,
                },
            }
        }
        TYPE_REMOVE_ACCESS_CONTROL_ENTRY => {
            MetadataRecord::RemoveAccessControlEntry { id: r.uuid("id")? }
        }
        TYPE_HTTP_TOKEN => MetadataRecord::HttpToken(HttpTokenImage {
            id: r.str16("id")?,
            principal: r.str16("principal")?,
            sha256: r.array("sha256")?,
            created_ms: r.i64("created_ms")?,
            expires_ms: r.i64("expires_ms")?,
        }),
        TYPE_REMOVE_HTTP_TOKEN => MetadataRecord::RemoveHttpToken { id: r.str16("id")? },
        TYPE_CLIENT_QUOTA => {
            // At most 255 pairs, each at least 3 bytes: bounded by the value.
            let n = r.u8("entity")?;
            let mut entity = Vec::with_capacity(usize::from(n).min(r.rest.len() / 3));
            for _ in 0..n {
                let entity_type = r.str16("entity_type")?;
                let name = match r.u8("entity_name")? {
                    0 => None,
                    _ => Some(r.str16("entity_name")?),
                };
                entity.push((entity_type, name));
            }
            let key = r.str16("key")?;
            let value = match r.u8("value")? {
                0 => None,
                _ => Some(f64::from_bits(r.u64("value")?)),
            };
            MetadataRecord::ClientQuota { entity, key, value }
        }
        TYPE_BEGIN => {
            return Ok(Decoded::Begin {
                records: r.u32("records")?,
            });
        }
        TYPE_END => return Ok(Decoded::End),
        TYPE_ABORT => return Ok(Decoded::Abort),
        other => return Err(CodecError::UnknownType(other)),
    };
    Ok(Decoded::Record(record))
}

fn put_str16(out: &mut Vec<u8>, s: &str, field: &'static str) -> Result<(), CodecError> {
    let len = u16::try_from(s.len()).map_err(|_| CodecError::TooLong(field))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Bytes with a u16 length.
fn put_bytes16(out: &mut Vec<u8>, b: &[u8], field: &'static str) -> Result<(), CodecError> {
    let len = u16::try_from(b.len()).map_err(|_| CodecError::TooLong(field))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b);
    Ok(())
}

/// A config value: 0 for none (reset), or 1, a u32 length and the bytes.
fn put_value(out: &mut Vec<u8>, value: Option<&str>) -> Result<(), CodecError> {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            let len = u32::try_from(v.len()).map_err(|_| CodecError::TooLong("value"))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(v.as_bytes());
        }
    }
    Ok(())
}

fn put_ids(out: &mut Vec<u8>, ids: &[i32], field: &'static str) -> Result<(), CodecError> {
    let n = u16::try_from(ids.len()).map_err(|_| CodecError::TooLong(field))?;
    out.extend_from_slice(&n.to_be_bytes());
    for id in ids {
        out.extend_from_slice(&id.to_be_bytes());
    }
    Ok(())
}

/// Reads fields off a value; every length is checked against the bytes
/// that remain before anything is allocated.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], CodecError> {
        if self.rest.len() < n {
            return Err(CodecError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, CodecError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, CodecError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    /// A one-byte Kafka enum code, which must be one `parse` knows.
    fn code<T>(
        &mut self,
        field: &'static str,
        parse: fn(i8) -> Option<T>,
    ) -> Result<T, CodecError> {
        let code = self.u8(field)? as i8;
        parse(code).ok_or(CodecError::UnknownCode { field, code })
    }

    fn uuid(&mut self, field: &'static str) -> Result<Uuid, CodecError> {
        Ok(Uuid::from_bytes(self.array(field)?))
    }

    fn string(&mut self, len: usize, field: &'static str) -> Result<String, CodecError> {
        let bytes = self.take(len, field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CodecError::NotUtf8(field))
    }

    fn bytes16(&mut self, field: &'static str) -> Result<Vec<u8>, CodecError> {
        let len = usize::from(self.u16(field)?);
        Ok(self.take(len, field)?.to_vec())
    }

    fn str16(&mut self, field: &'static str) -> Result<String, CodecError> {
        let len = usize::from(self.u16(field)?);
        self.string(len, field)
    }

    /// RegisterBroker's trailing endpoint list: absent (nothing left) in
    /// records from before named listeners. Each endpoint takes at least
    /// 10 bytes, so the count is checked against what remains.
    fn endpoints(&mut self) -> Result<Vec<BrokerEndpoint>, CodecError> {
        if self.rest.is_empty() {
            return Ok(Vec::new());
        }
        let n = usize::from(self.u16("endpoints")?);
        if n * 10 > self.rest.len() {
            return Err(CodecError::Truncated { field: "endpoints" });
        }
        let mut endpoints = Vec::with_capacity(n);
        for _ in 0..n {
            endpoints.push(BrokerEndpoint {
                name: self.str16("endpoint name")?,
                host: self.str16("endpoint host")?,
                port: self.i32("endpoint port")?,
                security_protocol: i16::from_be_bytes(self.array("endpoint security_protocol")?),
            });
        }
        Ok(endpoints)
    }

    /// A config value as [`put_value`] writes it.
    fn value(&mut self) -> Result<Option<String>, CodecError> {
        match self.u8("value")? {
            0 => Ok(None),
            _ => {
                let len = self.u32("value")? as usize;
                Ok(Some(self.string(len, "value")?))
            }
        }
    }

    fn ids(&mut self, field: &'static str) -> Result<Vec<i32>, CodecError> {
        let n = usize::from(self.u16(field)?);
        // Checked before allocating: a count cannot claim more than remains.
        if self.rest.len() < n * 4 {
            return Err(CodecError::Truncated { field });
        }
        (0..n).map(|_| self.i32(field)).collect()
    }
}

/// The version-0 JSON form, frozen: brokers before the binary format wrote
/// exactly these objects, and data directories they left must still load.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum JsonRecord {
    Topic {
        name: String,
        topic_id: Uuid,
    },
    Partition {
        topic_id: Uuid,
        partition: i32,
        leader: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader_epoch: i32,
    },
    TopicConfig {
        topic_id: Uuid,
        name: String,
        value: Option<String>,
    },
    RemoveTopic {
        topic_id: Uuid,
    },
    ProducerIds {
        next_producer_id: i64,
    },
}

impl From<JsonRecord> for MetadataRecord {
    fn from(r: JsonRecord) -> MetadataRecord {
        match r {
            JsonRecord::Topic { name, topic_id } => MetadataRecord::Topic { name, topic_id },
            JsonRecord::Partition {
                topic_id,
                partition,
                leader,
                replicas,
                isr,
                leader_epoch,
            } => MetadataRecord::Partition {
                topic_id,
                partition,
                leader,
                replicas,
                isr,
                leader_epoch,
                // Version 0 predates partition epochs and reassignment.
                partition_epoch: 0,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            },
            JsonRecord::TopicConfig {
                topic_id,
                name,
                value,
            } => MetadataRecord::TopicConfig {
                topic_id,
                name,
                value,
            },
            JsonRecord::RemoveTopic { topic_id } => MetadataRecord::RemoveTopic { topic_id },
            JsonRecord::ProducerIds { next_producer_id } => {
                MetadataRecord::ProducerIds { next_producer_id }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn any_record() -> impl Strategy<Value = MetadataRecord> {
        let id = any::<u128>().prop_map(Uuid::from_u128);
        let ids = proptest::collection::vec(any::<i32>(), 0..4);
        prop_oneof![
            (id.clone(), "[a-z0-9._-]{1,40}")
                .prop_map(|(topic_id, name)| MetadataRecord::Topic { name, topic_id }),
            (
                (
                    id.clone(),
                    any::<i32>(),
                    any::<i32>(),
                    ids.clone(),
                    ids.clone()
                ),
                (any::<i32>(), any::<i32>(), ids.clone(), ids.clone())
            )
                .prop_map(
                    |(
                        (topic_id, partition, leader, replicas, isr),
                        (leader_epoch, partition_epoch, adding_replicas, removing_replicas),
                    )| {
                        MetadataRecord::Partition {
                            topic_id,
                            partition,
                            leader,
                            replicas,
                            isr,
                            leader_epoch,
                            partition_epoch,
                            adding_replicas,
                            removing_replicas,
                        }
                    }
                ),
            (id.clone(), "[a-z.]{1,30}", proptest::option::of(".{0,50}")).prop_map(
                |(topic_id, name, value)| MetadataRecord::TopicConfig {
                    topic_id,
                    name,
                    value
                }
            ),
            id.clone()
                .prop_map(|topic_id| MetadataRecord::RemoveTopic { topic_id }),
            any::<i64>()
                .prop_map(|next_producer_id| MetadataRecord::ProducerIds { next_producer_id }),
            (
                any::<i32>(),
                id,
                any::<i64>(),
                "[a-z0-9.-]{0,40}",
                any::<i32>(),
                proptest::option::of("[a-z0-9-]{0,20}"),
                proptest::collection::vec(
                    ("[A-Z_]{1,10}", "[a-z0-9.-]{0,20}", any::<i32>(), 0i16..4).prop_map(
                        |(name, host, port, security_protocol)| BrokerEndpoint {
                            name,
                            host,
                            port,
                            security_protocol,
                        }
                    ),
                    0..3
                )
            )
                .prop_map(
                    |(broker_id, incarnation_id, epoch, host, port, rack, endpoints)| {
                        MetadataRecord::RegisterBroker {
                            broker_id,
                            incarnation_id,
                            epoch,
                            host,
                            port,
                            rack,
                            endpoints,
                        }
                    }
                ),
            (any::<i32>(), any::<bool>())
                .prop_map(|(broker_id, fenced)| MetadataRecord::FenceBroker { broker_id, fenced }),
            any::<i32>().prop_map(|broker_id| MetadataRecord::UnregisterBroker { broker_id }),
            (any::<i32>(), any::<bool>()).prop_map(|(broker_id, decommissioning)| {
                MetadataRecord::DecommissionBroker {
                    broker_id,
                    decommissioning,
                }
            }),
            "[A-Za-z0-9_-]{0,30}".prop_map(|cluster_id| MetadataRecord::ClusterId { cluster_id }),
            (
                any::<i32>(),
                "[a-z.]{1,40}",
                proptest::option::of(".{0,30}")
            )
                .prop_map(|(broker_id, name, value)| MetadataRecord::BrokerConfig {
                    broker_id,
                    name,
                    value
                }),
            (
                ".{1,20}",
                any::<i8>(),
                proptest::collection::vec(any::<u8>(), 0..40),
                proptest::collection::vec(any::<u8>(), 0..70),
                proptest::collection::vec(any::<u8>(), 0..70),
                any::<i32>()
            )
                .prop_map(
                    |(name, mechanism, salt, stored_key, server_key, iterations)| {
                        MetadataRecord::UserScramCredential {
                            name,
                            mechanism,
                            salt,
                            stored_key,
                            server_key,
                            iterations,
                        }
                    }
                ),
            (".{1,20}", any::<i8>()).prop_map(|(name, mechanism)| {
                MetadataRecord::RemoveUserScramCredential { name, mechanism }
            }),
            (
                any::<u128>(),
                (1i8..=7, ".{0,30}", 1i8..=4),
                ("[A-Za-z]{1,8}:.{0,20}", "[0-9.*]{1,15}", 1i8..=15, 1i8..=3)
            )
                .prop_map(
                    |(id, (rt, resource_name, pt), (principal, host, op, perm))| {
                        use crate::acl::*;
                        MetadataRecord::AccessControlEntry {
                            id: Uuid::from_u128(id),
                            acl: AclBinding {
                                resource_type: ResourceType::from_code(rt).expect("in range"),
                                resource_name,
                                pattern_type: PatternType::from_code(pt).expect("in range"),
                                principal,
                                host,
                                operation: AclOperation::from_code(op).expect("in range"),
                                permission: AclPermission::from_code(perm).expect("in range"),
                            },
                        }
                    }
                ),
            any::<u128>().prop_map(|id| MetadataRecord::RemoveAccessControlEntry {
                id: Uuid::from_u128(id)
            }),
            (
                "[a-f0-9-]{1,36}",
                "User:[a-z]{0,20}",
                any::<[u8; 32]>(),
                any::<i64>(),
                any::<i64>()
            )
                .prop_map(|(id, principal, sha256, created_ms, expires_ms)| {
                    MetadataRecord::HttpToken(HttpTokenImage {
                        id,
                        principal,
                        sha256,
                        created_ms,
                        expires_ms,
                    })
                }),
            "[a-f0-9-]{1,36}".prop_map(|id| MetadataRecord::RemoveHttpToken { id }),
            (
                proptest::collection::vec(("[a-z-]{1,10}", proptest::option::of(".{0,20}")), 0..4),
                "[a-z_]{1,30}",
                // Finite values: NaN is never stored (validation refuses
                // it) and would not compare equal to itself.
                proptest::option::of(-1e18f64..1e18f64)
            )
                .prop_map(|(entity, key, value)| MetadataRecord::ClientQuota {
                    entity,
                    key,
                    value
                }),
        ]
    }

    proptest! {
        #[test]
        fn every_record_round_trips(record in any_record()) {
            let bytes = encode(&record).expect("encode");
            prop_assert_eq!(decode(&bytes).ok(), Some(Decoded::Record(record)));
        }

        #[test]
        fn every_cut_of_a_value_is_an_error(record in any_record(), cut in any::<prop::sample::Index>()) {
            let bytes = encode(&record).expect("encode");
            let cut = cut.index(bytes.len());
            match (&record, decode(&bytes[..cut])) {
                (_, Err(_)) => {}
                // The cuts that decode are the older formats: a partition
                // record cut after its ISR (before partition epochs, read
                // with epoch 0) or after its epoch (before reassignment).
                (MetadataRecord::Partition { adding_replicas, removing_replicas, .. }, Ok(Decoded::Record(decoded))) => {
                    let lists = if adding_replicas.is_empty() && removing_replicas.is_empty() {
                        0
                    } else {
                        4 + 4 * (adding_replicas.len() + removing_replicas.len())
                    };
                    let mut expected = record.clone();
                    if let MetadataRecord::Partition { partition_epoch, adding_replicas, removing_replicas, .. } = &mut expected {
                        adding_replicas.clear();
                        removing_replicas.clear();
                        if cut + 4 + lists == bytes.len() {
                            *partition_epoch = 0;
                        } else {
                            prop_assert!(lists > 0 && cut + lists == bytes.len(), "cut at {} decoded {:?}", cut, decoded);
                        }
                    }
                    prop_assert_eq!(decoded, expected);
                }
                // A broker registration cut exactly before its endpoint
                // list is the format from before named listeners.
                (MetadataRecord::RegisterBroker { endpoints, .. }, Ok(Decoded::Record(decoded))) => {
                    let list: usize = 2 + endpoints.iter().map(|e| 2 + e.name.len() + 2 + e.host.len() + 4 + 2).sum::<usize>();
                    prop_assert!(!endpoints.is_empty() && cut + list == bytes.len(), "cut at {} decoded {:?}", cut, decoded);
                    let mut expected = record.clone();
                    if let MetadataRecord::RegisterBroker { endpoints, .. } = &mut expected {
                        endpoints.clear();
                    }
                    prop_assert_eq!(decoded, expected);
                }
                (_, Ok(decoded)) => prop_assert!(false, "cut at {} decoded {:?}", cut, decoded),
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn acl_records_have_their_own_types_and_layout() {
        use crate::acl::*;
        let id = Uuid::from_u128(0x0102);
        let record = MetadataRecord::AccessControlEntry {
            id,
            acl: AclBinding {
                resource_type: ResourceType::Topic,
                resource_name: "t".to_owned(),
                pattern_type: PatternType::Prefixed,
                principal: "User:a".to_owned(),
                host: "*".to_owned(),
                operation: AclOperation::Write,
                permission: AclPermission::Deny,
            },
        };
        let bytes = encode(&record).expect("encode");
        let mut expected = vec![FORMAT_V1, 17];
        expected.extend_from_slice(id.as_bytes());
        expected.extend_from_slice(&[2, 0, 1, b't', 4, 0, 6]);
        expected.extend_from_slice(b"User:a");
        expected.extend_from_slice(&[0, 1, b'*', 4, 2]);
        assert_eq!(bytes, expected);
        assert_eq!(decode(&bytes).expect("decodes"), Decoded::Record(record));
        let mut removal = vec![FORMAT_V1, 18];
        removal.extend_from_slice(id.as_bytes());
        assert_eq!(
            encode(&MetadataRecord::RemoveAccessControlEntry { id }).expect("encode"),
            removal
        );
        // An operation code Kafka does not define is refused, not guessed.
        let mut bad = expected.clone();
        let at = bad.len() - 2;
        bad[at] = 99;
        assert!(matches!(
            decode(&bad),
            Err(CodecError::UnknownCode {
                field: "operation",
                code: 99
            })
        ));
    }

    #[test]
    fn a_broker_config_record_has_its_own_type_and_layout() {
        let record = MetadataRecord::BrokerConfig {
            broker_id: -1,
            name: "leader.replication.throttled.rate".to_owned(),
            value: Some("2097152".to_owned()),
        };
        let bytes = encode(&record).expect("encode");
        let mut expected = vec![FORMAT_V1, 14, 0xff, 0xff, 0xff, 0xff, 0, 33];
        expected.extend_from_slice(b"leader.replication.throttled.rate");
        expected.extend_from_slice(&[1, 0, 0, 0, 7]);
        expected.extend_from_slice(b"2097152");
        assert_eq!(bytes, expected);
        assert_eq!(decode(&bytes).expect("decodes"), Decoded::Record(record));
        let removal = MetadataRecord::BrokerConfig {
            broker_id: 2,
            name: "x".to_owned(),
            value: None,
        };
        assert_eq!(
            encode(&removal).expect("encode"),
            [FORMAT_V1, 14, 0, 0, 0, 2, 0, 1, b'x', 0]
        );
    }

    #[test]
    fn an_http_token_record_holds_the_hash_in_its_own_layout() {
        let record = MetadataRecord::HttpToken(HttpTokenImage {
            id: "t1".to_owned(),
            principal: "User:al".to_owned(),
            sha256: [0xab; 32],
            created_ms: 1,
            expires_ms: 2,
        });
        let bytes = encode(&record).expect("encode");
        let mut expected = vec![FORMAT_V1, 20, 0, 2, b't', b'1', 0, 7];
        expected.extend_from_slice(b"User:al");
        expected.extend_from_slice(&[0xab; 32]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(bytes, expected);
        assert_eq!(decode(&bytes).expect("decodes"), Decoded::Record(record));
        let removal = MetadataRecord::RemoveHttpToken {
            id: "t1".to_owned(),
        };
        assert_eq!(
            encode(&removal).expect("encode"),
            [FORMAT_V1, 21, 0, 2, b't', b'1']
        );
        // A hash cut short is damage.
        assert!(matches!(
            decode(&bytes[..8 + 7 + 31]),
            Err(CodecError::Truncated { field: "sha256" })
        ));
    }

    #[test]
    fn a_client_quota_record_has_its_own_type_and_layout() {
        let record = MetadataRecord::ClientQuota {
            entity: vec![
                ("client-id".to_owned(), None),
                ("user".to_owned(), Some("al".to_owned())),
            ],
            key: "producer_byte_rate".to_owned(),
            value: Some(1024.0),
        };
        let bytes = encode(&record).expect("encode");
        let mut expected = vec![FORMAT_V1, 19, 2, 0, 9];
        expected.extend_from_slice(b"client-id");
        expected.extend_from_slice(&[0, 0, 4]);
        expected.extend_from_slice(b"user");
        expected.extend_from_slice(&[1, 0, 2]);
        expected.extend_from_slice(b"al");
        expected.extend_from_slice(&[0, 18]);
        expected.extend_from_slice(b"producer_byte_rate");
        expected.push(1);
        expected.extend_from_slice(&1024.0f64.to_bits().to_be_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(decode(&bytes).expect("decodes"), Decoded::Record(record));
        // A hostile count cannot make the reader allocate past the value.
        assert!(decode(&[FORMAT_V1, 19, 255, 0]).is_err());
    }

    #[test]
    fn markers_round_trip() {
        assert_eq!(
            decode(&encode_begin(10_001)).expect("begin"),
            Decoded::Begin { records: 10_001 }
        );
        assert_eq!(decode(&encode_end()).expect("end"), Decoded::End);
        assert_eq!(decode(&encode_abort()).expect("abort"), Decoded::Abort);
    }

    #[test]
    fn a_hostile_replica_count_is_refused_before_allocating() {
        let mut bytes = vec![FORMAT_V1, TYPE_PARTITION];
        bytes.extend_from_slice(&[0u8; 16 + 12]);
        bytes.extend_from_slice(&u16::MAX.to_be_bytes());
        assert!(
            matches!(
                decode(&bytes),
                Err(CodecError::Truncated { field: "replicas" })
            ),
            "{:?}",
            decode(&bytes)
        );
    }

    #[test]
    fn version_0_json_still_decodes() {
        let json = br#"{"type":"partition","topic_id":"6f1c1d2e-0000-4000-8000-000000000001","partition":7,"leader":1,"replicas":[1],"isr":[1],"leader_epoch":2}"#;
        let id = Uuid::parse_str("6f1c1d2e-0000-4000-8000-000000000001").expect("uuid");
        assert_eq!(
            decode(json).expect("v0 JSON decodes"),
            Decoded::Record(MetadataRecord::Partition {
                topic_id: id,
                partition: 7,
                leader: 1,
                replicas: vec![1],
                isr: vec![1],
                leader_epoch: 2,
                partition_epoch: 0,
                adding_replicas: vec![],
                removing_replicas: vec![],
            })
        );
    }

    /// The version-1 partition value a broker before partition epochs
    /// wrote: everything up to the ISR, nothing after it.
    fn pre_epoch_partition_value(topic_id: Uuid) -> Vec<u8> {
        let mut bytes = vec![FORMAT_V1, TYPE_PARTITION];
        bytes.extend_from_slice(topic_id.as_bytes());
        for field in [3i32, 2, 7] {
            // partition, leader, leader_epoch
            bytes.extend_from_slice(&field.to_be_bytes());
        }
        for ids in [&[2i32, 1][..], &[2][..]] {
            bytes.extend_from_slice(&(ids.len() as u16).to_be_bytes());
            for id in ids {
                bytes.extend_from_slice(&id.to_be_bytes());
            }
        }
        bytes
    }

    #[test]
    fn a_partition_record_without_a_partition_epoch_decodes_with_epoch_0() {
        let id = Uuid::from_u128(0xfeed);
        let old = pre_epoch_partition_value(id);
        let expected = MetadataRecord::Partition {
            topic_id: id,
            partition: 3,
            leader: 2,
            replicas: vec![2, 1],
            isr: vec![2],
            leader_epoch: 7,
            partition_epoch: 0,
            adding_replicas: vec![],
            removing_replicas: vec![],
        };
        assert_eq!(
            decode(&old).expect("pre-epoch value decodes"),
            Decoded::Record(expected.clone())
        );
        // Today's encoding is the old one plus the epoch, big-endian.
        let MetadataRecord::Partition {
            topic_id,
            partition,
            leader,
            replicas,
            isr,
            leader_epoch,
            adding_replicas,
            removing_replicas,
            ..
        } = expected
        else {
            unreachable!("built as a partition record");
        };
        let current = MetadataRecord::Partition {
            topic_id,
            partition,
            leader,
            replicas,
            isr,
            leader_epoch,
            partition_epoch: 0x0102_0304,
            adding_replicas,
            removing_replicas,
        };
        let mut with_epoch = old.clone();
        with_epoch.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(encode(&current).expect("encode"), with_epoch);
        assert_eq!(
            decode(&with_epoch).expect("decodes"),
            Decoded::Record(current)
        );
        // A cut epoch and bytes after it are still damage.
        for cut in 1..4 {
            assert!(
                matches!(
                    decode(&with_epoch[..old.len() + cut]),
                    Err(CodecError::Truncated {
                        field: "partition_epoch"
                    })
                ),
                "{cut} epoch bytes"
            );
        }
        // A byte after the epoch starts the reassignment lists, cut short.
        let mut longer = with_epoch;
        longer.push(0);
        assert!(matches!(
            decode(&longer),
            Err(CodecError::Truncated {
                field: "adding_replicas"
            })
        ));
    }

    #[test]
    fn a_partition_record_is_compact() {
        let record = MetadataRecord::Partition {
            topic_id: Uuid::new_v4(),
            partition: 9_999,
            leader: 1,
            replicas: vec![1],
            isr: vec![1],
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: vec![],
            removing_replicas: vec![],
        };
        // 2 + 16 + 12 + 6 + 6 + 4: a tenth of a 1 MiB batch holds ~2,000 of them.
        assert_eq!(encode(&record).expect("encode").len(), 46);
    }

    #[test]
    fn a_reassigning_partition_record_carries_both_lists_after_the_epoch() {
        let id = Uuid::from_u128(0xbeef);
        let settled = MetadataRecord::Partition {
            topic_id: id,
            partition: 0,
            leader: 1,
            replicas: vec![4, 1, 2],
            isr: vec![1, 2],
            leader_epoch: 3,
            partition_epoch: 5,
            adding_replicas: vec![],
            removing_replicas: vec![],
        };
        let settled_bytes = encode(&settled).expect("encode");
        let mut moving = settled.clone();
        if let MetadataRecord::Partition {
            adding_replicas,
            removing_replicas,
            ..
        } = &mut moving
        {
            *adding_replicas = vec![4];
            *removing_replicas = vec![2];
        }
        let mut expected = settled_bytes.clone();
        expected.extend_from_slice(&[0, 1, 0, 0, 0, 4, 0, 1, 0, 0, 0, 2]);
        let bytes = encode(&moving).expect("encode");
        assert_eq!(bytes, expected, "two id lists after the epoch");
        assert_eq!(decode(&bytes).expect("decodes"), Decoded::Record(moving));
        // A value from before reassignment (ending at the epoch) decodes
        // with no reassignment in progress.
        assert_eq!(
            decode(&settled_bytes).expect("decodes"),
            Decoded::Record(settled)
        );
        // A cut inside the lists is damage, not an older format.
        assert!(matches!(
            decode(&bytes[..settled_bytes.len() + 6]),
            Err(CodecError::Truncated {
                field: "removing_replicas"
            })
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(CodecError::TrailingBytes(1))));
        assert!(matches!(
            decode(&bytes[..settled_bytes.len() + 1]),
            Err(CodecError::Truncated {
                field: "adding_replicas"
            })
        ));
    }

    #[test]
    fn register_broker_endpoints_are_an_optional_trailing_list() {
        let old = MetadataRecord::RegisterBroker {
            broker_id: 2,
            incarnation_id: Uuid::from_u128(7),
            epoch: 3,
            host: "h".to_owned(),
            port: 9092,
            rack: None,
            endpoints: Vec::new(),
        };
        let old_bytes = encode(&old).expect("encode");
        let MetadataRecord::RegisterBroker {
            broker_id,
            incarnation_id,
            epoch,
            host,
            port,
            rack,
            ..
        } = old.clone()
        else {
            unreachable!("built above")
        };
        let new = MetadataRecord::RegisterBroker {
            broker_id,
            incarnation_id,
            epoch,
            host,
            port,
            rack,
            endpoints: vec![
                BrokerEndpoint {
                    name: "CLIENT".to_owned(),
                    host: "c".to_owned(),
                    port: 9092,
                    security_protocol: 0,
                },
                BrokerEndpoint {
                    name: "SECURE".to_owned(),
                    host: "s".to_owned(),
                    port: 9094,
                    security_protocol: 1,
                },
            ],
        };
        let bytes = encode(&new).expect("encode");
        // The record without endpoints is the old format, unchanged, and
        // decodes with none.
        assert_eq!(&bytes[..old_bytes.len()], &old_bytes[..]);
        assert_eq!(decode(&old_bytes).expect("old"), Decoded::Record(old));
        assert_eq!(decode(&bytes).expect("new"), Decoded::Record(new));
        // A cut inside the list is damage, not an older format.
        assert!(matches!(
            decode(&bytes[..old_bytes.len() + 5]),
            Err(CodecError::Truncated { .. })
        ));
        // A hostile count is refused before anything is allocated.
        let mut hostile = old_bytes.clone();
        hostile.extend_from_slice(&[0xff, 0xff, 0, 0]);
        assert!(matches!(
            decode(&hostile),
            Err(CodecError::Truncated { field: "endpoints" })
        ));
    }
}
