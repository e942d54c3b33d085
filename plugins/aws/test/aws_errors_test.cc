// AWS's error shapes → code and message (EC2, S3/STS XML, REST-JSON and JSON 1.1,
// the x-amzn-ErrorType header), and the one-line AwsError text.
#include <doctest/doctest.h>

#include "aws_client.h"

using lcake::aws::AwsError;
using lcake::aws::parse_aws_error;
using lcake::http::HttpResponse;

TEST_CASE("error bodies of each protocol") {
  HttpResponse ec2{400, "<?xml version=\"1.0\"?><Response><Errors><Error><Code>InvalidAMIID.NotFound</Code>"
                        "<Message>The image id '[ami-1]' does not exist</Message></Error></Errors>"
                        "<RequestID>r</RequestID></Response>", {}};
  CHECK(parse_aws_error(ec2) == std::pair<std::string, std::string>{"InvalidAMIID.NotFound", "The image id '[ami-1]' does not exist"});
  HttpResponse s3{403, "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does "
                       "not match</Message><StringToSign>AWS4...</StringToSign></Error>", {}};
  CHECK(parse_aws_error(s3).first == "SignatureDoesNotMatch");
  HttpResponse sts{403, "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
                        "<Code>AccessDenied</Code><Message>not authorized</Message></Error></ErrorResponse>", {}};
  CHECK(parse_aws_error(sts).first == "AccessDenied");
  HttpResponse ssm{400, R"({"__type":"com.amazonaws.ssm#ParameterNotFound","message":"no such parameter"})", {}};
  CHECK(parse_aws_error(ssm) == std::pair<std::string, std::string>{"ParameterNotFound", "no such parameter"});
  HttpResponse ebs{400, R"({"Message":"checksum mismatch","Reason":"INVALID_CHECKSUM"})",
                   {{"x-amzn-errortype", "ValidationException:http://internal.amazon.com/coral/"}}};
  CHECK(parse_aws_error(ebs) == std::pair<std::string, std::string>{"ValidationException", "checksum mismatch"});
  HttpResponse none{502, "<html>bad gateway</html>", {}};
  CHECK(parse_aws_error(none).first == "HTTP 502");
}

TEST_CASE("AwsError is one line naming service, action, code, message and status") {
  AwsError e("ebs", "PutSnapshotBlock", 400, "ValidationException", "checksum mismatch");
  CHECK(std::string(e.what()) == "aws ebs PutSnapshotBlock: ValidationException: checksum mismatch (HTTP 400)");
  CHECK(e.code == "ValidationException");
}
