"""moto_server with one fix for signature checking; runs under the Python that has moto.

moto 5.2.1 rebuilds the request it verifies from `body or data`; an EBS direct call with an empty body
(CompleteSnapshot, ListSnapshotBlocks, ListChangedBlocks, GetSnapshotBlock) has its headers in `data`,
so the payload hash it computes is wrong and correctly signed calls are refused. The fix signs the
empty body for those calls and leaves every other request as moto builds it.
"""
import sys

from moto.iam import access_control

_original = access_control.IAMRequestBase._create_aws_request


def _create_aws_request(self):
    request = _original(self)
    if self._service == "ebs" and not self._body:
        request.data = b""
    return request


access_control.IAMRequestBase._create_aws_request = _create_aws_request

if __name__ == "__main__":
    from moto.server import main
    main(sys.argv[1:])
