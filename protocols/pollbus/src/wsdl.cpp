// The WSDL an ASMX service describes itself with (`GET /Bus.asmx?WSDL`),
// reduced to the SOAP 1.1 binding: the shape .NET 2.0-4.x generates for
// `List<BaseMessage> Poll(BaseMessage)` with eight [XmlInclude] subtypes.
#include <string>

#include "nudge/pollbus/codec.hpp"

namespace nudge::pollbus {

namespace {

constexpr std::string_view head = R"(<?xml version="1.0" encoding="utf-8"?>
<wsdl:definitions xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:tm="http://microsoft.com/wsdl/mime/textMatching/" xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:mime="http://schemas.xmlsoap.org/wsdl/mime/" xmlns:tns="http://tempuri.org/" xmlns:s1="http://microsoft.com/wsdl/types/" xmlns:s="http://www.w3.org/2001/XMLSchema" xmlns:http="http://schemas.xmlsoap.org/wsdl/http/" targetNamespace="http://tempuri.org/" xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/">
  <wsdl:types>
    <s:schema elementFormDefault="qualified" targetNamespace="http://tempuri.org/">
      <s:import namespace="http://microsoft.com/wsdl/types/" />
      <s:element name="Poll">
        <s:complexType>
          <s:sequence>
            <s:element minOccurs="0" maxOccurs="1" name="message" type="tns:BaseMessage" />
          </s:sequence>
        </s:complexType>
      </s:element>
      <s:complexType name="BaseMessage">
        <s:sequence>
          <s:element minOccurs="1" maxOccurs="1" name="AgentId" type="s1:guid" />
          <s:element minOccurs="1" maxOccurs="1" name="TimeStamp" type="s:dateTime" />
        </s:sequence>
      </s:complexType>
)";

// One subtype: its name and the elements its extension adds.
std::string subtype(std::string_view name, std::string_view elements) {
  std::string out = "      <s:complexType name=\"";
  out += name;
  out += "\">\n        <s:complexContent mixed=\"false\">\n          <s:extension base=\"tns:BaseMessage\"";
  if (elements.empty()) {
    out += " />\n";
  } else {
    out += ">\n            <s:sequence>\n";
    out += elements;
    out += "            </s:sequence>\n          </s:extension>\n";
  }
  out += "        </s:complexContent>\n      </s:complexType>\n";
  return out;
}

constexpr std::string_view tail_types = R"(      <s:simpleType name="PollModeOptions">
        <s:restriction base="s:string">
          <s:enumeration value="Register" />
          <s:enumeration value="Poll" />
        </s:restriction>
      </s:simpleType>
      <s:element name="PollResponse">
        <s:complexType>
          <s:sequence>
            <s:element minOccurs="0" maxOccurs="1" name="PollResult" type="tns:ArrayOfBaseMessage" />
          </s:sequence>
        </s:complexType>
      </s:element>
      <s:complexType name="ArrayOfBaseMessage">
        <s:sequence>
          <s:element minOccurs="0" maxOccurs="unbounded" name="BaseMessage" nillable="true" type="tns:BaseMessage" />
        </s:sequence>
      </s:complexType>
    </s:schema>
    <s:schema elementFormDefault="qualified" targetNamespace="http://microsoft.com/wsdl/types/">
      <s:simpleType name="guid">
        <s:restriction base="s:string">
          <s:pattern value="[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}" />
        </s:restriction>
      </s:simpleType>
    </s:schema>
  </wsdl:types>
  <wsdl:message name="PollSoapIn">
    <wsdl:part name="parameters" element="tns:Poll" />
  </wsdl:message>
  <wsdl:message name="PollSoapOut">
    <wsdl:part name="parameters" element="tns:PollResponse" />
  </wsdl:message>
  <wsdl:portType name="BusSoap">
    <wsdl:operation name="Poll">
      <wsdl:input message="tns:PollSoapIn" />
      <wsdl:output message="tns:PollSoapOut" />
    </wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="BusSoap" type="tns:BusSoap">
    <soap:binding transport="http://schemas.xmlsoap.org/soap/http" />
    <wsdl:operation name="Poll">
      <soap:operation soapAction="http://tempuri.org/Poll" style="document" />
      <wsdl:input>
        <soap:body use="literal" />
      </wsdl:input>
      <wsdl:output>
        <soap:body use="literal" />
      </wsdl:output>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="Bus">
    <wsdl:port name="BusSoap" binding="tns:BusSoap">
      <soap:address location=")";

constexpr std::string_view tail_end = R"(" />
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>)";


}  // namespace

std::string wsdl(std::string_view location) {
  std::string out(head);
  // [XmlInclude] order, as the seed's service declares them.
  out += subtype("EmptyMessage", {});
  out += subtype("RegisterMessage",
                 "              <s:element minOccurs=\"0\" maxOccurs=\"1\" name=\"ComputerName\" type=\"s:string\" />\n"
                 "              <s:element minOccurs=\"0\" maxOccurs=\"1\" name=\"UserInfo\" type=\"s:string\" />\n");
  out += subtype("ImageDataMessage", {});
  out += subtype("PollModeMessage",
                 "              <s:element minOccurs=\"1\" maxOccurs=\"1\" name=\"Mode\" type=\"tns:PollModeOptions\" />\n");
  out += subtype("PollIntervalMessage",
                 "              <s:element minOccurs=\"1\" maxOccurs=\"1\" name=\"IntervalInMilliseconds\" type=\"s:int\" />\n");
  out += subtype("ThumbsizeMessage", {});
  out += subtype("ImageNoChangeMessage", {});
  out += subtype("ChatMessage",
                 "              <s:element minOccurs=\"0\" maxOccurs=\"1\" name=\"Text\" type=\"s:string\" />\n");
  out += tail_types;
  // The location is an attribute value: escape what would end it.
  for (const char c : location) {
    if (c == '"') out += "&quot;";
    else if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else out.push_back(c);
  }
  out += tail_end;
  return out;
}

}  // namespace nudge::pollbus
