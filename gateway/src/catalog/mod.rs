pub mod fn_env;
