//! [`Message`]: any SV2 message, dispatched on `(extension_type, msg_type)`.

use crate::common::CommonMessage;
use crate::error::DecodeError;
use crate::extensions::ExtensionsMessage;
use crate::frame::{parse_frame, Header};
use crate::job_declaration::JobDeclarationMessage;
use crate::mining::MiningMessage;
use crate::template_distribution::TemplateDistributionMessage;
use bytes::BufMut;

/// Extension id of the base protocols.
pub const EXTENSION_BASE: u16 = 0x0000;
/// Extension id of extension negotiation (`extensions/0x0001-*.md`).
pub const EXTENSION_NEGOTIATION: u16 = 0x0001;
/// Extension id of worker-specific hashrate tracking (`extensions/0x0002-*.md`).
pub const EXTENSION_WORKER_HASHRATE: u16 = 0x0002;

/// Any message this crate knows, grouped by sub-protocol.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// Common messages (0x00-0x0f).
    Common(CommonMessage),
    /// Mining Protocol (0x10-0x4f).
    Mining(MiningMessage),
    /// Job Declaration Protocol (0x50-0x6f).
    JobDeclaration(JobDeclarationMessage),
    /// Template Distribution Protocol (0x70-0x7f).
    TemplateDistribution(TemplateDistributionMessage),
    /// Extension messages (extension 0x0001).
    Extensions(ExtensionsMessage),
}

macro_rules! each {
    ($self:expr, $m:ident => $e:expr) => {
        match $self {
            Message::Common($m) => $e,
            Message::Mining($m) => $e,
            Message::JobDeclaration($m) => $e,
            Message::TemplateDistribution($m) => $e,
            Message::Extensions($m) => $e,
        }
    };
}

impl Message {
    /// Decode the payload of a frame; the payload must be exactly the message (use
    /// [`Message::decode_with_tlvs`] where extensions append TLV fields).
    ///
    /// The header's channel_msg bit is not checked against the message's: the spec says it
    /// is ignored for look-up, and a tolerant receiver decodes what it can.
    pub fn decode(header: &Header, payload: &[u8]) -> Result<Self, DecodeError> {
        if payload.len() != header.msg_length as usize {
            return Err(DecodeError::LengthMismatch {
                declared: header.msg_length as usize,
                actual: payload.len(),
            });
        }
        let t = header.msg_type;
        // Each sub-protocol's strict decoder builds the message in place (no intermediate
        // copy of the large enum, no second pass for trailing bytes).
        let found = match header.extension_type {
            EXTENSION_BASE => match t {
                0x00..=0x0f => CommonMessage::decode(t, payload)?.map(Message::Common),
                0x10..=0x4f => MiningMessage::decode(t, payload)?.map(Message::Mining),
                0x50..=0x6f => {
                    JobDeclarationMessage::decode(t, payload)?.map(Message::JobDeclaration)
                }
                0x70..=0x7f => TemplateDistributionMessage::decode(t, payload)?
                    .map(Message::TemplateDistribution),
                _ => None,
            },
            EXTENSION_NEGOTIATION => {
                ExtensionsMessage::decode(t, payload)?.map(Message::Extensions)
            }
            _ => None,
        };
        found.ok_or(DecodeError::UnknownMessage {
            extension_type: header.extension_type,
            msg_type: t,
        })
    }

    /// Decode the message at the start of the payload and return it with the bytes after it:
    /// the TLV fields of negotiated extensions (read them with [`crate::tlv::decode_list`] or
    /// [`crate::tlv::TlvField::find_in`]).
    pub fn decode_with_tlvs<'a>(
        header: &Header,
        payload: &'a [u8],
    ) -> Result<(Self, &'a [u8]), DecodeError> {
        if payload.len() != header.msg_length as usize {
            return Err(DecodeError::LengthMismatch {
                declared: header.msg_length as usize,
                actual: payload.len(),
            });
        }
        let t = header.msg_type;
        let found =
            match header.extension_type {
                EXTENSION_BASE => match t {
                    0x00..=0x0f => CommonMessage::decode_prefix(t, payload)?
                        .map(|(m, r)| (Message::Common(m), r)),
                    0x10..=0x4f => MiningMessage::decode_prefix(t, payload)?
                        .map(|(m, r)| (Message::Mining(m), r)),
                    0x50..=0x6f => JobDeclarationMessage::decode_prefix(t, payload)?
                        .map(|(m, r)| (Message::JobDeclaration(m), r)),
                    0x70..=0x7f => TemplateDistributionMessage::decode_prefix(t, payload)?
                        .map(|(m, r)| (Message::TemplateDistribution(m), r)),
                    _ => None,
                },
                EXTENSION_NEGOTIATION => ExtensionsMessage::decode_prefix(t, payload)?
                    .map(|(m, r)| (Message::Extensions(m), r)),
                _ => None,
            };
        found.ok_or(DecodeError::UnknownMessage {
            extension_type: header.extension_type,
            msg_type: t,
        })
    }

    /// Decode a whole plaintext frame (header + payload) held in one slice.
    pub fn from_frame_bytes(bytes: &[u8]) -> Result<(Header, Self), DecodeError> {
        let (header, payload) = parse_frame(bytes)?;
        Ok((header, Self::decode(&header, payload)?))
    }

    /// The spec's name of the message.
    pub fn name(&self) -> &'static str {
        each!(self, m => m.name())
    }

    /// The message type number.
    pub fn msg_type(&self) -> u8 {
        each!(self, m => m.msg_type())
    }

    /// The extension id (without the channel_msg bit).
    pub fn extension_type(&self) -> u16 {
        each!(self, m => m.extension_type())
    }

    /// The channel_msg bit the message is sent with.
    pub fn channel_msg(&self) -> bool {
        each!(self, m => m.channel_msg())
    }

    /// The frame header for this message.
    pub fn header(&self) -> Header {
        each!(self, m => m.header())
    }

    /// Payload length in bytes.
    pub fn encoded_len(&self) -> usize {
        each!(self, m => m.encoded_len())
    }

    /// Append the payload (no header) to `buf`.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        each!(self, m => m.encode(buf))
    }

    /// Append header and payload to `buf`.
    pub fn encode_frame<B: BufMut>(&self, buf: &mut B) {
        self.header().encode(buf);
        self.encode(buf);
    }

    /// Append header, payload and the TLV fields of negotiated extensions to `buf`;
    /// `msg_length` covers the TLVs. Fails if the total exceeds what a frame can carry.
    pub fn encode_frame_with_tlvs<B: BufMut>(
        &self,
        tlvs: &[crate::tlv::Tlv],
        buf: &mut B,
    ) -> Result<(), crate::LengthError> {
        crate::tlv::header_with_tlvs(self.header(), self.encoded_len(), tlvs)?.encode(buf);
        self.encode(buf);
        crate::tlv::encode_list(tlvs, buf);
        Ok(())
    }

    /// The whole frame in a fresh vector.
    pub fn to_frame_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(crate::frame::HEADER_LEN + self.encoded_len());
        self.encode_frame(&mut v);
        v
    }

    /// The fields as JSON, named as in the spec (feature `json`).
    #[cfg(feature = "json")]
    pub fn fields_json(&self) -> serde_json::Value {
        each!(self, m => m.fields_json())
    }
}
