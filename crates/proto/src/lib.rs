pub mod keys; pub mod time;
