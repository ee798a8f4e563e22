"""EMQX 4 ExHook: actormq as the gRPC client of a user's `HookProvider` servers.

- `exhook.proto`: our description of the `emqx.exhook.v1` service (EMQX 4.x
  names and numbers); `exhook_pb2.py` / `exhook_pb2_grpc.py` are generated
  from it with the command at the top of the .proto (grpcio-tools).
- `actormq.exhook.server`: one server's channel, loaded hooks, reconnects.
- `actormq.exhook.convert`: hook arguments to request messages and back.
- `actormq.exhook.plugin`: the ``exhook`` built-in on the hook chains.

Needs the optional extra: ``pip install 'actormq[exhook]'`` (grpcio, protobuf).
"""
