"""Test services for lcake's aws plugin: a moto launcher and the aws-sim front proxy."""
