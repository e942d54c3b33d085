# wt-awsroles' part of the aws backend, included by CMakeLists.txt: the import
# uploader mode (S3 staging + ImportSnapshot), the EC2 verifier, publish, gc.
target_sources(lcake_aws_impl PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/s3_staging.cc
  ${CMAKE_CURRENT_LIST_DIR}/import_uploader.cc
  ${CMAKE_CURRENT_LIST_DIR}/ec2_instance.cc
  ${CMAKE_CURRENT_LIST_DIR}/ec2_verifier.cc
  ${CMAKE_CURRENT_LIST_DIR}/image_cleanup.cc
  ${CMAKE_CURRENT_LIST_DIR}/publish.cc)

if(BUILD_TESTING)
  # Against moto + aws-sim (tests/services/aws), started once for the binary;
  # exits 77 (skipped) when moto_server is not installed. Boots a VM under TCG.
  lcake_unit_test(aws_roles_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test/roles_test.cc ${CMAKE_CURRENT_LIST_DIR}/test/boot_publish_test.cc
    LIBS lcake_aws_impl lcake_ssh aws_test_services LABELS slow)
  target_include_directories(aws_roles_test PRIVATE ${CMAKE_CURRENT_LIST_DIR}/test)
  set_tests_properties(aws_roles_test PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 1200 RESOURCE_LOCK lcake_aws_sim_boot COST 65)
endif()
