//! placeholder: the server (issue 2) goes here.
