pub mod xdp;
