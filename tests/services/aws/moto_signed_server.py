"""moto_server with two fixes for signature checking; runs under the Python that has moto.

moto 5.2.1 rebuilds the request it verifies from `body or data`; an EBS direct call with an empty body
(CompleteSnapshot, ListSnapshotBlocks, ListChangedBlocks, GetSnapshotBlock) has its headers in `data`,
so the payload hash it computes is wrong and correctly signed calls are refused. The fix signs the
empty body for those calls.

It also rebuilds the URL from a query string whose `%2F` came back decoded as `/`; botocore's S3
signer takes that query as it is, so a correctly signed `ListObjectsV2 ?prefix=a/b` (awscli's too)
was refused with SignatureDoesNotMatch. The fix encodes the query again as SigV4 wants it (RFC 3986
unreserved characters only). Every other part of the request stays as moto builds it.
"""
import sys
import urllib.parse

from moto.iam import access_control

_original = access_control.IAMRequestBase._create_aws_request


def _create_aws_request(self):
    request = _original(self)
    if self._service == "ebs" and not self._body:
        request.data = b""
    path, sep, query = request.url.partition("?")
    if sep and query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        request.url = path + "?" + "&".join(
            urllib.parse.quote(k, safe="-_.~") + "=" + urllib.parse.quote(v, safe="-_.~") for k, v in pairs)
    return request


access_control.IAMRequestBase._create_aws_request = _create_aws_request

if __name__ == "__main__":
    from moto.server import main
    main(sys.argv[1:])
