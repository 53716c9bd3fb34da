"""The client side of serving: request and answer tensors on the wire, warm-up records, gRPC, REST and sharded clients."""
