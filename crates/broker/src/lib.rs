//! The broker: network server, request handlers, partitions, and metadata image.
