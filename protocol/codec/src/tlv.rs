//! TLV fields of negotiated extensions (`09-Extensions.md`).
