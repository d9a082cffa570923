//! One way to the collector for spans and log records: OTLP over gRPC
//! (tonic, the request already encoded) or over HTTP/protobuf (observe's own
//! hyper client). Built on the export thread, inside its runtime.

use bytes::{Buf as _, BufMut as _, Bytes};
use http::uri::PathAndQuery;
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};

use super::{Protocol, config::ExportConfig, http_client::OtlpHttpClient};

/// What a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Traces,
    Logs,
}

impl Signal {
    fn grpc_path(self) -> PathAndQuery {
        PathAndQuery::from_static(match self {
            Self::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Self::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        })
    }
}

pub(crate) enum Transport {
    Grpc {
        grpc: tonic::client::Grpc<tonic::transport::Channel>,
        metadata: tonic::metadata::MetadataMap,
    },
    Http {
        client: OtlpHttpClient,
        traces_url: String,
        logs_url: String,
        headers: Vec<(String, String)>,
    },
}

impl Transport {
    pub(crate) fn new(config: &ExportConfig) -> Result<Self, String> {
        match config.protocol {
            Protocol::Grpc => {
                let endpoint = tonic::transport::Endpoint::from_shared(config.endpoint.clone())
                    .map_err(|error| error.to_string())?
                    .timeout(config.timeout)
                    .connect_timeout(config.timeout);
                let mut headers = http::HeaderMap::new();
                for (name, value) in &config.headers {
                    if let (Ok(name), Ok(value)) = (
                        http::HeaderName::from_bytes(name.as_bytes()),
                        http::HeaderValue::from_str(value),
                    ) {
                        headers.append(name, value);
                    }
                }
                Ok(Self::Grpc {
                    grpc: tonic::client::Grpc::new(endpoint.connect_lazy()),
                    metadata: tonic::metadata::MetadataMap::from_headers(headers),
                })
            }
            Protocol::HttpProtobuf => Ok(Self::Http {
                client: OtlpHttpClient::new(config.timeout),
                traces_url: config.endpoint.clone(),
                logs_url: config.logs_endpoint(),
                headers: config.headers.clone(),
            }),
        }
    }

    /// Sends one encoded export request; the collector's answer is only a
    /// success or a failure.
    pub(crate) async fn send(&mut self, signal: Signal, body: Bytes) -> Result<(), String> {
        match self {
            Self::Grpc { grpc, metadata } => {
                grpc.ready().await.map_err(|error| error.to_string())?;
                let mut request = tonic::Request::new(body);
                *request.metadata_mut() = metadata.clone();
                grpc.unary(request, signal.grpc_path(), Encoded)
                    .await
                    .map(|_| ())
                    .map_err(|status| match status.message() {
                        "" => status.code().to_string(),
                        message => message.to_owned(),
                    })
            }
            Self::Http {
                client,
                traces_url,
                logs_url,
                headers,
            } => {
                let url = match signal {
                    Signal::Traces => traces_url.as_str(),
                    Signal::Logs => logs_url.as_str(),
                };
                let mut builder = http::Request::post(url)
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf");
                for (name, value) in headers.iter() {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                let request = builder.body(body).map_err(|error| error.to_string())?;
                let response = client
                    .send_bytes(request)
                    .await
                    .map_err(|error| error.to_string())?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("the collector answered {}", response.status()))
                }
            }
        }
    }
}

/// A gRPC codec for a request that is protobuf already; the answer (an
/// `Export*ServiceResponse`) is read and set aside.
#[derive(Debug, Clone, Copy, Default)]
struct Encoded;

impl Codec for Encoded {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = Encoded;
    type Decoder = Encoded;

    fn encoder(&mut self) -> Self::Encoder {
        Encoded
    }

    fn decoder(&mut self) -> Self::Decoder {
        Encoded
    }
}

impl Encoder for Encoded {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Encoded {
    type Item = ();
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}
