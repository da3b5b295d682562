"""Hoa Đẹp: “Mỗi người tốt, việc tốt là một bông hoa đẹp.”"""

__version__ = "0.1.0"
